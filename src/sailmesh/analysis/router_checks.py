"""Analyzers of OpenShift Routes in front of Istio gateways, and of gateway certificates
read from files.

Owns: SM0145 (a Route whose router → gateway hop fails: the reencrypt no-SNI pitfall,
TLS/plain mismatches, a certificate the router will not trust), SM0146 (a Gateway server
file that the gateway pod will not have), SM0147 (a Route annotation whose value the router
does not use as written; the reading is model.route_settings', the router's own). The hop
judgement is `router_hop`'s, shared with `x tls-check route/NAME`.
Must not know: output, clocks, the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.messages import Finding
from sailmesh.analysis.router_hop import router_hops, unreadable_server_files
from sailmesh.model.route_admission import DEFAULT_APPS_DOMAIN
from sailmesh.model.route_settings import route_settings
from sailmesh.resources.openshift import Route


def route_to_gateway_fails(ctx: AnalysisContext) -> Iterator[Finding]:
    for hop in router_hops(ctx, DEFAULT_APPS_DOMAIN):
        for j in hop.judgements:
            if not j.works:
                yield Finding(hop.route, "spec.tls" if hop.termination else "spec",
                              f"the router sends {hop.sends} to {j.gateway} port {j.port}, "
                              f"which accepts {j.accepts}: " + "; ".join(j.reasons))


def gateway_server_file_missing(ctx: AnalysisContext) -> Iterator[Finding]:
    by_server: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for gs, field_name, why in unreadable_server_files(ctx):
        by_server.setdefault((f"Gateway {gs.gateway_key}", gs.field), []).append(
            (field_name, why))
    for (ref, at), problems in by_server.items():
        yield Finding(ref, f"{at}.tls.{problems[0][0]}",
                      "the gateway cannot read " + "; ".join(why for _, why in problems)
                      + "; the server is left out of the gateway's listener")


def route_annotation_ignored(ctx: AnalysisContext) -> Iterator[Finding]:
    for route in ctx.snapshot.of_kind(Route):
        for name, why in route_settings(route).ignored:
            yield Finding(route.ref, f"metadata.annotations[{name}]", why)
