"""The push planner: (snapshot, pods, identities, now) → a `Push` for every proxy.

Pure apart from what the injected `Identities` does (sign certificates); the daemon owns
all IO around it (reading the store, the runtime, publishing over xDS, timers).
"""

from sailmesh.control.memo import TranslationMemo
from sailmesh.control.push import Identities, NodePush, ProxyPod, Push, plan_push

__all__ = ["Identities", "NodePush", "ProxyPod", "Push", "TranslationMemo", "plan_push"]
