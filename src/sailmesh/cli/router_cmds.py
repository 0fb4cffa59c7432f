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


def route_statuses() -> dict[str, Any]:
    status = daemon_call("status") or {}
    return status.get("routes", {})


def with_status(doc: dict[str, Any], statuses: dict[str, Any]) -> dict[str, Any]:
    """A Route as `oc get route -o yaml` shows it: with the router's `status`."""
    meta = doc.get("metadata", {})
    found = statuses.get(f"{meta.get('namespace')}/{meta.get('name')}")
    return {**doc, "status": found} if found else doc


def routes_table(items: list[Any], all_namespaces: bool) -> str:
    """`oc get routes`: NAME HOST/PORT PATH SERVICES PORT TERMINATION WILDCARD."""
    from sailmesh.cli.output import table
    from sailmesh.router.admission import default_host

    statuses = route_statuses()
    domain = router_info()["appsDomain"]
    rows = []
    for r in items:
        spec = r.spec
        ingress = (statuses.get(f"{r.namespace}/{r.name}") or {}).get("ingress") or [{}]
        cond = (ingress[0].get("conditions") or [{}])[0]
        host = ingress[0].get("host") or spec.host or default_host(r, domain)
        if cond.get("status") == "False":
            host = cond.get("reason", "NotAdmitted")
        backends = r.backends()
        if len(backends) == 1:
            services = backends[0].name
        else:
            total = sum(b.effective_weight for b in backends) or 1
            services = ",".join(f"{b.name}({round(100 * b.effective_weight / total)}%)"
                                for b in backends)
        port = str(spec.port.target_port) if spec.port else "<all>"
        termination = ""
        if spec.tls:
            termination = spec.tls.termination
            if spec.tls.insecure_edge_termination_policy:
                termination += f"/{spec.tls.insecure_edge_termination_policy}"
        prefix = [r.namespace] if all_namespaces else []
        rows.append([*prefix, r.name, host, spec.path or "", services, port, termination,
                     spec.wildcard_policy or "None"])
    headers = (["NAMESPACE"] if all_namespaces else []) + [
        "NAME", "HOST/PORT", "PATH", "SERVICES", "PORT", "TERMINATION", "WILDCARD"]
    return table(headers, rows)
