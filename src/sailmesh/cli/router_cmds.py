"""`sailctl router`: the OpenShift router of the local mesh — its apps domain, the ports it
publishes on 127.0.0.1, and its CA (what clients trust for the default certificate).

Owns: presenting the daemon's router settings (or, with the mesh down, those `sailctl up`
would use). Must not know: how Routes become HAProxy configuration (`sailmesh.router`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from sailmesh.analysis.context import AnalysisContext
from sailmesh.cli.common import daemon_call, home
from sailmesh.cli.output import emit, fail, table


def router_info() -> dict[str, Any]:
    """The running router's settings, else the ones `sailctl up` would use now."""
    status = daemon_call("status")
    if status is not None and "router" in status:
        return status["router"]
    from sailmesh.meshd.openshift_router import RouterConfig

    config = RouterConfig.from_env()
    return {"appsDomain": config.apps_domain, "httpPort": config.host_http_port,
            "httpsPort": config.host_https_port,
            "caFile": str(home().root / "router" / "router-ca.crt"), "problem": ""}


@click.group("router")
def router() -> None:
    """The OpenShift router (HAProxy in namespace openshift-ingress)."""


@router.command("ca")
def router_ca() -> None:
    """Print the router CA (PEM): it signs the default *.<apps domain> certificate, so
    `curl --cacert` with it trusts edge and reencrypt Routes without their own certificate."""
    path = router_info()["caFile"]
    try:
        with open(path) as f:
            click.echo(f.read(), nl=False)
    except FileNotFoundError:
        fail(f"no router CA yet ({path}): `sailctl up` creates it")


@router.command("info")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml")
def router_show(output: str) -> None:
    """Apps domain, published ports and CA file of the router."""
    emit(router_info(), output)



def tls_check_route(ctx: AnalysisContext, name: str, namespace: str, output: str | None) -> None:
    """`x tls-check route/NAME`: the router → gateway hop of one Route."""
    from sailmesh.analysis.router_hop import router_hop
    from sailmesh.model.route_admission import admit
    from sailmesh.resources.openshift import Route

    route = ctx.snapshot.get(Route, namespace, name)
    if route is None:
        fail(f'Error from server (NotFound): routes.route.openshift.io "{name}" not found')
    domain = router_info()["appsDomain"]
    admission = admit(ctx.snapshot.of_kind(Route), domain)
    host = admission.hosts[(namespace, name)]
    hop = router_hop(ctx, route, host)
    if output:
        emit({"route": hop.route, "host": hop.host, "termination": hop.termination or "none",
              "routerSends": hop.sends, "routerVerifies": hop.verifies,
              "rejected": asdict(admission.rejected[(namespace, name)])
              if (namespace, name) in admission.rejected else None,
              "servers": [asdict(j) for j in hop.judgements], "verdict": hop.verdict}, output)
        return
    rows = [["router (openshift-ingress)", f"{host} ({hop.termination or 'plain'})",
             f"{j.gateway}:{j.port}", hop.sends, j.accepts, "works" if j.works else "FAILS"]
            for j in hop.judgements]
    lines = [table(["SOURCE", "ROUTE", "SERVER", "ROUTER SENDS", "SERVER ACCEPTS", "VERDICT"],
                   rows) if rows else
             f"{hop.route}: no Istio gateway behind its Services; nothing to judge.", ""]
    if (namespace, name) in admission.rejected:
        r = admission.rejected[(namespace, name)]
        lines.append(f"Not admitted by the router: {r.reason}: {r.message}")
    lines.append(f"Router: sends {hop.sends}; verifies {hop.verifies}")
    for j in hop.judgements:
        lines.append(f"Server {j.gateway} port {j.port}: {j.accepts}")
        lines += [f"  - {s}" for s in j.servers]
        lines += [f"  - {r}" for r in j.reasons]
    lines.append(f"Verdict: {hop.verdict}")
    click.echo("\n".join(lines))
