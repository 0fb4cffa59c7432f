"""`sailctl router`: the OpenShift router of the local mesh — its apps domain, the ports it
publishes on 127.0.0.1, and its CA (what clients trust for the default certificate).

Owns: presenting the daemon's router settings (or, with the mesh down, those `sailctl up`
would use). Must not know: how Routes become HAProxy configuration (`sailmesh.router`).
"""

from __future__ import annotations

from typing import Any

import click

from sailmesh.cli.common import daemon_call, home
from sailmesh.cli.output import emit, fail


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

