"""`sailctl x edges`: the mesh's edges seen by telemetry, as a table (like `linkerd viz edges`).

Owns: the command and its rows — source, destination, secured, the principals of both
ends and, for an unsecured edge, why (the rule `x tls-check` says decided it). Must not
know: how edges are found (see `analysis.edges`).
"""

from __future__ import annotations

from typing import Any

import click

from sailmesh.analysis.edges import Edge
from sailmesh.cli import dashboard_data as data
from sailmesh.cli.common import all_namespaces_option, namespace_option
from sailmesh.cli.output import emit, fail, table


def _reason(edge: Edge) -> str:
    if edge.secured and edge.security != "partial":
        return ""
    if edge.source_workload == "unknown":
        return "the client has no sidecar (plaintext from outside the mesh)"
    ports = sorted(edge.ports)
    hop = data.explain_edge(edge.source_namespace, edge.source_workload, edge.source_gateway,
                            edge.service, ports[0] if len(ports) == 1 else None)
    if "error" in hop:
        return str(hop["error"])
    client = hop["client"]
    return f"{client['policy']} ({client['mode']}) on the client side"


def _row(edge: Edge, window: float) -> dict[str, Any]:
    d = edge.as_dict(window)
    return {**d, "reason": _reason(edge)}


@click.command("edges")
@namespace_option
@all_namespaces_option
@click.option("--window", "-w", type=float, default=600.0, show_default=True,
              help="Seconds of recent traffic to look at.")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), default=None)
def edges(namespace: str | None, all_namespaces: bool, window: float, output: str | None) -> None:
    """Edges between workloads seen in recent traffic, and whether each is secured."""
    chosen = [] if all_namespaces else [namespace or "default"]
    try:
        found = data.edges(window, chosen)
    except data.MeshDown as exc:
        fail(str(exc))
    rows = [_row(e, window) for e in found]
    if output in ("json", "yaml"):
        emit(rows, output)
        return
    if not rows:
        click.echo(f"No edges in the last {window:.0f}s"
                   + ("" if all_namespaces else f" in namespace {chosen[0]}"))
        return
    headers = ["SRC", "DST", "SRC_NS", "DST_NS", "PROTOCOL", "SECURED", "CLIENT_ID", "SERVER_ID",
               "MSG"]
    out = []
    for r in rows:
        dst = r["destination"]
        line = [r["source"]["workload"],
                dst["workload"] if dst["workload"] != "unknown" else r["service"]["host"],
                r["source"]["namespace"] or "-", dst["namespace"] if dst["namespace"] != "unknown"
                else r["service"]["namespace"], r["protocol"],
                {"mtls": "yes (mTLS)", "tls-originated": "yes (TLS originated)",
                 "passthrough": "yes (TLS passthrough)", "partial": f"no ({r['mtls_percent']}% mTLS)",
                 "plaintext": "no (plaintext)"}[r["security"]],
                ",".join(r["source_principals"]) or "-",
                ",".join(r["destination_principals"]) or "-", r["reason"] or "-"]
        out.append(line)
    click.echo(table(headers, out))


__all__ = ["edges"]
