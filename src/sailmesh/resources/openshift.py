"""OpenShift's Route (route.openshift.io/v1): a host name (and path) exposed by the router,
sent to a Service, with the router's TLS termination.

Owns: the typed model and the API server's rules for one Route (openshift/api
route/v1 types and their CRD validations), written as `check_route` for `validation`.
Must not know: HAProxy, admission by the router (host conflicts, certificate checks —
see `sailmesh.model.route_admission`), other resources.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field

from sailmesh.resources import names
from sailmesh.resources.base import Resource, Spec
from sailmesh.resources.errors import Findings

IntOrString = int | str

TERMINATIONS = ("edge", "passthrough", "reencrypt")
INSECURE_POLICIES = ("None", "Allow", "Redirect")


class RouteTargetReference(Spec):
    # openshift/api: kind "Service" or "" (defaulted to Service); weight 0..256, default 100.
    kind: str = "Service"
    name: str
    weight: int | None = Field(default=None, ge=0, le=256)

    @property
    def effective_weight(self) -> int:
        return 100 if self.weight is None else self.weight


class RoutePort(Spec):
    target_port: IntOrString


class TLSConfig(Spec):
    termination: Literal["edge", "passthrough", "reencrypt"]
    certificate: str | None = None
    key: str | None = None
    ca_certificate: str | None = Field(default=None, alias="caCertificate")
    destination_ca_certificate: str | None = Field(default=None,
                                                   alias="destinationCACertificate")
    insecure_edge_termination_policy: Literal["None", "Allow", "Redirect", ""] | None = None
    external_certificate: dict[str, Any] | None = None

    @property
    def insecure_policy(self) -> str:
        return self.insecure_edge_termination_policy or "None"


class RouteSetHTTPHeader(Spec):
    value: str


class RouteHTTPHeaderActionUnion(Spec):
    type: Literal["Set", "Delete"]
    set: RouteSetHTTPHeader | None = None


class RouteHTTPHeader(Spec):
    name: str
    action: RouteHTTPHeaderActionUnion


class RouteHTTPHeaderActions(Spec):
    response: list[RouteHTTPHeader] = Field(default_factory=list)
    request: list[RouteHTTPHeader] = Field(default_factory=list)


class RouteHTTPHeaders(Spec):
    actions: RouteHTTPHeaderActions | None = None


class RouteSpec(Spec):
    host: str | None = None
    subdomain: str | None = None
    path: str | None = None
    to: RouteTargetReference
    alternate_backends: list[RouteTargetReference] = Field(default_factory=list)
    port: RoutePort | None = None
    tls: TLSConfig | None = None
    wildcard_policy: Literal["None", "Subdomain", ""] | None = None
    http_headers: RouteHTTPHeaders | None = Field(default=None, alias="httpHeaders")


class Route(Resource):
    KIND: ClassVar[str] = "Route"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("route.openshift.io/v1",)
    NAMES: ClassVar[tuple[str, ...]] = ("routes", "route")
    spec: RouteSpec
    # Written by the router (admission); accepted on input so `get -o yaml` applies back.
    status: dict[str, Any] | None = None

    def backends(self) -> list[RouteTargetReference]:
        """`to` and then `alternateBackends`, in the order OpenShift weighs them."""
        return [self.spec.to, *self.spec.alternate_backends]


def check_route(route: Route, f: Findings) -> None:
    """The API server's rules for one Route (openshift/api route/v1 CRD validations and
    openshift-apiserver's route validation)."""
    spec = route.spec
    if spec.host:
        if problem := names.dns1123_subdomain(spec.host):
            f.error("spec.host", f'Invalid value: "{spec.host}": {problem}')
        elif any(len(label) > 63 for label in spec.host.split(".")):
            f.error("spec.host", f'Invalid value: "{spec.host}": must be no more than 63 '
                                 "characters in each label")
    if spec.subdomain and (problem := names.dns1123_subdomain(spec.subdomain)):
        f.error("spec.subdomain", f'Invalid value: "{spec.subdomain}": {problem}')
    if spec.path is not None and spec.path and not spec.path.startswith("/"):
        f.error("spec.path", f'Invalid value: "{spec.path}": path must begin with /')
    for at, ref in [("spec.to", spec.to)] + [
            (f"spec.alternateBackends[{i}]", b) for i, b in enumerate(spec.alternate_backends)]:
        if ref.kind not in ("Service", ""):
            f.error(f"{at}.kind", f'Unsupported value: "{ref.kind}": supported values: '
                                  '"Service", ""')
        if not ref.name:
            f.error(f"{at}.name", "Required value")
        elif problem := names.dns1035_label(ref.name):
            f.error(f"{at}.name", f'Invalid value: "{ref.name}": {problem}')
    if len(spec.alternate_backends) > 3:
        f.error("spec.alternateBackends",
                f"Too many: {len(spec.alternate_backends)}: must have at most 3 items")
    if spec.port is not None and spec.port.target_port in ("", 0):
        f.error("spec.port.targetPort", "Required value")
    if spec.wildcard_policy == "Subdomain" and not spec.host:
        f.error("spec.wildcardPolicy", "Invalid value: \"Subdomain\": host name not "
                                       "specified for wildcard policy")
    tls = spec.tls
    _check_header_actions(route, f)
    if tls is None:
        return
    if tls.termination == "passthrough":
        if spec.path:
            f.error("spec.path", f'Invalid value: "{spec.path}": passthrough termination '
                                 "does not support paths")
        for field, value in (("certificate", tls.certificate), ("key", tls.key),
                             ("caCertificate", tls.ca_certificate),
                             ("destinationCACertificate", tls.destination_ca_certificate)):
            if value:
                f.error(f"spec.tls.{field}", f"Invalid value: \"redacted {field} data\": "
                                             f"passthrough termination does not support "
                                             f"certificates")
        if tls.insecure_policy == "Allow":
            f.error("spec.tls.insecureEdgeTerminationPolicy",
                    "cannot have both spec.tls.termination: passthrough and "
                    "spec.tls.insecureEdgeTerminationPolicy: Allow")
    if tls.termination == "edge" and tls.destination_ca_certificate:
        f.error("spec.tls.destinationCACertificate",
                'Invalid value: "redacted destination ca certificate data": edge '
                "termination does not support destination certificates")


# openshift/api route/v1 RouteHTTPHeader(s): names as RFC 7230 tokens, values either text
# without control characters or HAProxy's %[fetch,converter] with the few fetchers and
# converters the API allows (req.hdr on requests, res.hdr on responses, ssl_c_der).
HEADER_NAME = re.compile(r"^[-!#$%&'*+.0-9A-Z^_`a-z|~]+$")
MAX_HEADER_ACTIONS = 20


def _header_value_pattern(fetcher: str) -> re.Pattern[str]:
    return re.compile(
        r"^(?:%(?:%|(?:\{[-+]?[QXE](?:,[-+]?[QXE])*\})?\[(?:" + fetcher
        + r"\([0-9A-Za-z-]+\)|ssl_c_der)(?:,(?:lower|base64))*\])|[^%\x00-\x1f\x7f])+$")


HEADER_VALUE = {"request": _header_value_pattern(r"req\.hdr"),
                "response": _header_value_pattern(r"res\.hdr")}
# Headers a Route may not set or delete: HSTS has its own annotation, Proxy is the
# HTTPoxy header the router strips, cookies belong to the router's session affinity.
DENIED_HEADERS = {
    "strict-transport-security": "strict-transport-security may not be set/delete via "
                                 "header actions",
    "proxy": "proxy may not be set/delete via header actions",
    "cookie": "cookie may not be set/delete via header actions",
    "set-cookie": "set-cookie may not be set/delete via header actions",
}


def _check_header_actions(route: Route, f: Findings) -> None:
    headers = route.spec.http_headers
    if headers is None or headers.actions is None:
        return
    actions = headers.actions
    tls = route.spec.tls
    if tls is not None and tls.termination == "passthrough" and (
            actions.request or actions.response):
        f.error("spec", "header actions are not permitted when tls termination is passthrough.")
    for phase in ("response", "request"):
        at = f"spec.httpHeaders.actions.{phase}"
        items: list[RouteHTTPHeader] = getattr(actions, phase)
        if len(items) > MAX_HEADER_ACTIONS:
            f.error(at, f"Too many: {len(items)}: must have at most {MAX_HEADER_ACTIONS} items")
        seen: set[str] = set()
        for i, h in enumerate(items):
            here = f"{at}[{i}]"
            if h.name in seen:
                f.error(f"{here}.name", f'Duplicate value: "{h.name}"')
            seen.add(h.name)
            if not h.name or len(h.name) > 1024 or not HEADER_NAME.fullmatch(h.name):
                f.error(f"{here}.name", f'Invalid value: "{h.name}": a header name is 1 to '
                        "1024 characters of letters, digits and -!#$%&'*+.^_`|~")
            elif denied := DENIED_HEADERS.get(h.name.lower()):
                f.error(f"{here}.name", denied)
            if (h.action.type == "Set") != (h.action.set is not None):
                f.error(f"{here}.action", "set is required when type is Set, and forbidden "
                                          "otherwise")
            elif h.action.set is not None:
                value = h.action.set.value
                if not 1 <= len(value) <= 16384:
                    f.error(f"{here}.action.set.value", "must be 1 to 16384 characters")
                elif not HEADER_VALUE[phase].fullmatch(value):
                    fetcher = "req.hdr" if phase == "request" else "res.hdr"
                    f.error(f"{here}.action.set.value",
                            f'Invalid value: "{value}": Either the header value provided is not '
                            "in correct format or the sample fetcher/converter specified is "
                            f"not allowed. Sample fetchers allowed are {fetcher}, ssl_c_der. "
                            "Converters allowed are lower, base64.")


__all__ = ["INSECURE_POLICIES", "TERMINATIONS", "Route", "RouteSpec", "TLSConfig",
           "check_route"]
