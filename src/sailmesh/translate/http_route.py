"""One VirtualService `http[]` entry → Envoy routes (match + action).

Owns: Istio's HTTPMatchRequest → RouteMatch mapping (uri exact/prefix/regex, headers,
method, authority, scheme, queryParams, ignoreUriCase, withoutHeaders), the port and
gateway predicates of a match, and the action (cluster / weighted clusters, rewrite,
redirect, direct response, timeout), and its tracing operation (translate.tracing).
Must not know: virtual hosts, listeners.

Istio facts: one Envoy route per `match` entry (none → prefix `/`); route name is the
http route's `name` (`<name>.<match name>` when the match is named); regexes are RE2
(`safe_regex`); the default timeout is none, written `0s`.
"""

from __future__ import annotations

import base64
from collections.abc import Collection

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from google.protobuf import duration_pb2

from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.mesh import MeshModel
from sailmesh.resources.durations import duration_seconds
from sailmesh.resources.networking import (
    HTTPMatchRequest,
    HTTPRoute,
    StringMatch,
    VirtualService,
)
from sailmesh.translate.tracing import route_operation

REDIRECT_CODES: dict[int, int] = {
    301: rc.RedirectAction.MOVED_PERMANENTLY,
    302: rc.RedirectAction.FOUND,
    303: rc.RedirectAction.SEE_OTHER,
    307: rc.RedirectAction.TEMPORARY_REDIRECT,
    308: rc.RedirectAction.PERMANENT_REDIRECT,
}


def http_routes(model: MeshModel, vs: VirtualService, index: int, route: HTTPRoute, *,
                gateways: Collection[str], ports: Collection[int],
                ) -> tuple[list[rc.Route], list[Diagnostic]]:
    """Envoy routes of `vs.spec.http[index]` for servers of `gateways` on `ports`.

    A match naming a `port` or `gateways` that none of those servers has is skipped (Istio
    `isPortMatch` / `isGatewayMatch`); when every match is skipped the route is absent.
    """
    field = f"spec.http[{index}]"
    action, diags = _action(model, vs, field, route)
    if action is None:
        return [], diags
    matches: list[HTTPMatchRequest | None] = list(route.match) or [None]
    out: list[rc.Route] = []
    for m in matches:
        if m is not None and not _applies(m, vs.namespace, gateways, ports):
            continue
        r = rc.Route(match=route_match(m))
        name = route.name or ""
        if m is not None and m.name:
            name = f"{name}.{m.name}" if name else m.name
        if name:
            r.name = name
        r.MergeFrom(action)
        r.decorator.operation = route_operation(r, vs.name, min(ports))
        # Istio tags each route with its VirtualService; `proxy-config route` reads it back.
        r.metadata.filter_metadata["istio"].update({"config": virtual_service_path(vs)})
        out.append(r)
    return out, diags


def virtual_service_path(vs: VirtualService) -> str:
    return f"/apis/networking.istio.io/v1alpha3/namespaces/{vs.namespace}/virtual-service/{vs.name}"


def _applies(m: HTTPMatchRequest, namespace: str, gateways: Collection[str],
             ports: Collection[int]) -> bool:
    if m.port is not None and m.port not in ports:
        return False
    if m.gateways:
        # `mesh` (the sidecars) is a keyword, not a Gateway name in the namespace.
        wanted = {g if "/" in g or g == "mesh" else f"{namespace}/{g}" for g in m.gateways}
        return bool(wanted & set(gateways))
    return True


def is_catch_all(route: rc.Route) -> bool:
    """A route that matches every request (Istio moves these last when merging)."""
    m = route.match
    return (m.WhichOneof("path_specifier") == "prefix" and m.prefix == "/"
            and not m.headers and not m.query_parameters)


def route_match(m: HTTPMatchRequest | None) -> rc.RouteMatch:
    out = rc.RouteMatch()
    if m is None or m.uri is None:
        out.prefix = "/"
    elif m.uri.exact is not None:
        out.path = m.uri.exact
    elif m.uri.prefix is not None:
        out.prefix = m.uri.prefix
    elif m.uri.regex is not None:
        out.safe_regex.CopyFrom(_regex(m.uri.regex))
    else:
        out.prefix = "/"
    if m is None:
        return out
    if m.ignore_uri_case:
        out.case_sensitive.value = False
    # Istio turns method/authority/scheme into pseudo-header matches; header names are
    # matched in lower case (HTTP/2 header names are lower case on the wire).
    for name, sm in (("method", m.method), ("authority", m.authority), ("scheme", m.scheme)):
        if sm is not None:
            out.headers.append(_header(f":{name}", sm, invert=False))
    for name, sm in m.headers.items():
        out.headers.append(_header(name.lower(), sm, invert=False))
    for name, sm in m.without_headers.items():
        out.headers.append(_header(name.lower(), sm, invert=True))
    for name, sm in m.query_params.items():
        qp = rc.QueryParameterMatcher(name=name)
        if sm.exact == "" and sm.prefix is None and sm.regex is None:
            qp.present_match = True  # Istio: an empty exact value means "present"
        else:
            qp.string_match.CopyFrom(_string(sm))
        out.query_parameters.append(qp)
    return out


def _header(name: str, sm: StringMatch, *, invert: bool) -> rc.HeaderMatcher:
    h = rc.HeaderMatcher(name=name, invert_match=invert)
    if sm.exact is None and sm.prefix is None and sm.regex is None:
        h.present_match = True
    else:
        h.string_match.CopyFrom(_string(sm))
    return h


def _string(sm: StringMatch) -> string_pb2.StringMatcher:
    if sm.exact is not None:
        return string_pb2.StringMatcher(exact=sm.exact)
    if sm.prefix is not None:
        return string_pb2.StringMatcher(prefix=sm.prefix)
    return string_pb2.StringMatcher(safe_regex=_regex(sm.regex or ""))


def _regex(pattern: str) -> regex_pb2.RegexMatcher:
    # Envoy's default (and only non-deprecated) engine is RE2, as Istio requires.
    return regex_pb2.RegexMatcher(regex=pattern)


def parse_duration(text: str) -> duration_pb2.Duration:
    """A Go/Istio duration ("1h2m", "0.5s", "250ms") → protobuf Duration."""
    total = duration_seconds(text)
    seconds = int(total)
    return duration_pb2.Duration(seconds=seconds, nanos=round((total - seconds) * 1e9))


def _action(model: MeshModel, vs: VirtualService, field: str,
            route: HTTPRoute) -> tuple[rc.Route | None, list[Diagnostic]]:
    """The action part of a route, carried in an otherwise empty Route."""
    out = rc.Route()
    if route.redirect is not None:
        r = route.redirect
        red = out.redirect
        if r.uri:
            red.path_redirect = r.uri
        if r.authority:
            red.host_redirect = r.authority
        if r.port:
            red.port_redirect = r.port
        if r.scheme:
            red.scheme_redirect = r.scheme
        red.response_code = REDIRECT_CODES.get(r.redirect_code or 301,
                                               rc.RedirectAction.MOVED_PERMANENTLY)
        return out, []
    if route.direct_response is not None:
        d = route.direct_response
        out.direct_response.status = d.status
        if d.body and "string" in d.body:
            out.direct_response.body.CopyFrom(base_pb2.DataSource(inline_string=d.body["string"]))
        elif d.body and "bytes" in d.body:
            out.direct_response.body.CopyFrom(
                base_pb2.DataSource(inline_bytes=base64.b64decode(d.body["bytes"])))
        return out, []
    if not route.route:
        return None, [Diagnostic("error", vs.ref, field, "http route has no route, redirect "
                                 "or directResponse; it is dropped", codes.ROUTE_DROPPED)]
    clusters: list[tuple[str, int]] = []
    for dest in route.route:
        name = model.destination_cluster(dest.destination, vs.namespace)
        if name is None:  # the model already reported why (unknown host / ambiguous port)
            return None, []
        clusters.append((name, dest.weight if dest.weight is not None else 0))
    action = out.route
    if len(clusters) == 1:
        action.cluster = clusters[0][0]
    else:
        if sum(w for _, w in clusters) == 0:  # no weights given: split evenly
            share, rest = divmod(100, len(clusters))
            clusters = [(n, share + (1 if i < rest else 0)) for i, (n, _) in enumerate(clusters)]
        for n, w in clusters:
            if w > 0:  # Istio leaves zero-weight destinations out
                weighted = action.weighted_clusters.clusters.add(name=n)
                weighted.weight.value = w
    diags: list[Diagnostic] = []
    try:
        action.timeout.CopyFrom(parse_duration(route.timeout or "0s"))
    except ValueError as exc:
        diags.append(Diagnostic("warning", vs.ref, f"{field}.timeout",
                                f"{exc}; no timeout applied", codes.ROUTE_DROPPED))
        action.timeout.CopyFrom(duration_pb2.Duration())
    if route.rewrite is not None:
        if route.rewrite.uri is not None:
            action.prefix_rewrite = route.rewrite.uri
        if route.rewrite.authority:
            action.host_rewrite_literal = route.rewrite.authority
        rr = route.rewrite.uri_regex_rewrite
        if rr:
            action.regex_rewrite.pattern.CopyFrom(_regex(rr.get("match", "")))
            action.regex_rewrite.substitution = rr.get("rewrite", "")
    return out, diags
