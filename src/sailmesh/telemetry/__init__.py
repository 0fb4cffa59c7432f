"""Istio's standard metrics from what our Envoys count.

Each Envoy counts requests and connections in its stats access loggers; `collector` reads
every proxy's admin endpoint and `proxy_stats` turns the readings into increments;
`labels` names both ends as Istio does from what the control plane knows (`directory`);
`store` keeps the counters, histograms and recent samples; `exposition` serves them to
Prometheus.
"""

from sailmesh.telemetry.directory import Directory, PodFacts, build_directory
from sailmesh.telemetry.store import MetricStore

__all__ = ["Directory", "MetricStore", "PodFacts", "build_directory"]
