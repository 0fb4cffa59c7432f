"""Istio's standard metrics from our Envoys' access-log entries.

Envoy streams one entry per request (HTTP) or connection event (TCP) to the control
plane's access-log service (`service`); `labels` names both ends as Istio does from what
the control plane knows (`directory`); `store` keeps the counters and recent samples;
`exposition` serves them to Prometheus.
"""

from sailmesh.telemetry.directory import Directory, PodFacts, build_directory
from sailmesh.telemetry.store import MetricStore

__all__ = ["Directory", "MetricStore", "PodFacts", "build_directory"]
