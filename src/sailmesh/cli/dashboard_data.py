"""What the dashboard and `sailctl x edges` show, assembled from the running mesh.

Owns: asking the daemon for recent telemetry and CA status, reading the stored config into
an analysis context, and handing both to the pure parts (`analysis.edges`,
`analysis.mtls_status`, `analysis.explain`). Must not know: HTTP, HTML, terminal output.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sailmesh.analysis.context import AnalysisContext, build_context, with_builtin_gateways
from sailmesh.analysis.edges import Edge, edges_from_samples, graph, in_namespaces, mtls_share
from sailmesh.analysis.explain import explain
from sailmesh.analysis.hop import ExplainError, find_destination, find_source
from sailmesh.analysis.mtls_status import mesh_status, namespace_status, namespaces
from sailmesh.cli.common import daemon_call, home
from sailmesh.model.snapshot import Snapshot
from sailmesh.store import Store

DEFAULT_WINDOW = 60.0


class MeshDown(Exception):
    """The mesh is not running: there is no telemetry to show."""


def context() -> AnalysisContext:
    stored = Store(home().root).list()
    return build_context(Snapshot.of(with_builtin_gateways(stored)), datetime.now(UTC))


def telemetry(window: float) -> dict[str, Any]:
    reply = daemon_call("telemetry", window=window)
    if reply is None:
        raise MeshDown("the mesh is not running (`sailctl up -d` starts it)")
    return reply


def edges(window: float, chosen: Sequence[str] = ()) -> list[Edge]:
    reply = telemetry(window)
    found = edges_from_samples(reply["samples"], [tuple(g) for g in reply["gateways"]])
    return [e for e in found if in_namespaces(e, chosen)]


def graph_data(window: float, chosen: Sequence[str] = ()) -> dict[str, Any]:
    found = edges(window, chosen)
    return {"generated": time.time(), "window": window, "namespaces": list(chosen),
            "mtls_percent": mtls_share(found), **graph(found, window)}


def explain_edge(source_namespace: str, source_workload: str, gateway: bool, host: str,
                 port: int | None) -> dict[str, Any]:
    """`x tls-check` of an edge: which rules decided, and why."""
    ctx = context()
    if source_workload == "unknown":
        spec = "outside"
    elif gateway:
        spec = "egress" if "egress" in source_workload else "ingress"
    else:
        spec = f"deploy/{source_workload}"
    try:
        source = find_source(ctx, spec, source_namespace or "default")
        dest = find_destination(ctx, f"{host}:{port}" if port else host,
                                source_namespace or "default", source.namespace or None)
    except ExplainError as exc:
        return {"error": str(exc)}
    hop = explain(ctx, source, dest)
    args = [spec, f"{host}:{port}" if port else host]
    return {**hop.as_dict(), "command": f"sailctl x tls-check -n {source_namespace or 'default'} "
            + " ".join(args)}


def namespaces_data() -> dict[str, Any]:
    model = context().model
    mesh = mesh_status(model)
    rows = [namespace_status(model, ns, mesh) for ns in namespaces(model)]
    return {"mesh": mesh, "autoMtls": model.mesh.enable_auto_mtls,
            "namespaces": [r.__dict__ for r in rows]}


def certificates_data() -> dict[str, Any]:
    status = daemon_call("status")
    if status is None:
        raise MeshDown("the mesh is not running (`sailctl up -d` starts it)")
    return dict(status.get("ca", {}))


__all__ = ["DEFAULT_WINDOW", "MeshDown", "certificates_data", "context", "edges",
           "explain_edge", "graph_data", "namespaces_data", "telemetry"]
