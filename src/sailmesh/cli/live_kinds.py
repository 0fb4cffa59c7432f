"""The kinds that exist only while the mesh runs (Pods, ReplicaSets), by kubectl's names:
no model is imported, so the light commands can tell them from stored kinds."""

from __future__ import annotations

# kind → (apiVersion, kubectl's names).
LIVE_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Pod": ("v1", ("pods", "pod", "po")),
    "ReplicaSet": ("apps/v1", ("replicasets", "replicaset", "rs")),
}


def live_kind(name: str) -> str | None:
    """`pods`, `po`, `replicaset.apps`... → the live kind, or None."""
    key = name.lower().split(".")[0]
    for kind, (_api, names) in LIVE_KINDS.items():
        if key in names or key == kind.lower():
            return kind
    return None
