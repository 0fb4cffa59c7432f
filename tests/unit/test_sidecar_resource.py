"""The Sidecar kind: Istio's webhook rules (ValidateSidecar), which Sidecar applies to a
proxy (pilot's getSidecarScope) and what its egress hosts import (sidecar.go)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sailmesh.model.services import MeshService, ServicePort
from sailmesh.model.sidecar_scope import (
    SidecarScope,
    applying_sidecar,
    import_registry,
    scope_of,
)
from sailmesh.resources.errors import ResourceError
from sailmesh.resources.loader import load_paths
from sailmesh.resources.networking import VirtualService
from sailmesh.resources.sidecar import Sidecar
from sailmesh.resources.validation import validate

Expected = list[tuple[str, str, str]]


def _sidecar(spec: dict[str, Any], name: str = "default", namespace: str = "test",
             created: str = "2026-01-01T00:00:00Z",
             api: str = "networking.istio.io/v1") -> Sidecar:
    return Sidecar.model_validate({
        "apiVersion": api, "kind": "Sidecar",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": spec}, by_alias=True, by_name=False)


def _egress(*hosts: str, **more: Any) -> dict[str, Any]:
    return {"egress": [{"hosts": list(hosts), **more}]}


CASES: list[tuple[str, dict[str, Any], Expected]] = [
    ("namespace-default", _egress("./*", "istio-system/*"), []),
    ("all-forms", _egress("*/*.example.com", "~/*", "prod/reviews.prod.svc.cluster.local"), []),
    ("policy-only", {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}, []),
    ("empty", {}, [("error", "spec", "sidecar: empty configuration provided")]),
    ("no-slash", _egress("reviews.prod.svc.cluster.local"),
     [("error", "spec.egress[0].hosts[0]", "host must be of form namespace/dnsName")]),
    ("two-slashes", _egress("a/b/c.com"),
     [("error", "spec.egress[0].hosts[0]", "host must be of form namespace/dnsName")]),
    ("empty-parts", _egress("/foo.com"),
     [("error", "spec.egress[0].hosts[0]", "cannot be empty")]),
    ("bad-namespace", _egress("Bad_NS/foo.com"),
     [("error", "spec.egress[0].hosts[0]", 'invalid namespace value "Bad_NS" in sidecar')]),
    ("short-name", _egress("./reviews"),
     [("error", "spec.egress[0].hosts[0]", "short names (non FQDN) are not allowed")]),
    ("partial-wildcard", _egress("./foo*.example.com"),
     [("error", "spec.egress[0].hosts[0]", "a wildcard must be the whole first label")]),
    ("no-hosts", {"egress": [{"hosts": []}]},
     [("error", "spec.egress[0].hosts", "egress listener must contain at least one host")]),
    ("duplicate-host", _egress("./*", "test/a.example.com"),
     [("warning", "spec.egress[0].hosts[1]", "duplicated egress host: test/a.example.com")]),
    ("star-star-and-more", _egress("*/*", "ns1/a.example.com"),
     [("warning", "spec.egress[0].hosts", "`*/*` host select all resources")]),
    ("selector-wildcard", {"workloadSelector": {"labels": {"app": "web*"}}, **_egress("./*")},
     [("error", "spec.workloadSelector.labels[app]", "wildcard is not supported in selector")]),
    ("selector-empty", {"workloadSelector": {"labels": {}}, **_egress("./*")},
     [("warning", "spec.workloadSelector", "will be applied to all services in namespace")]),
    ("catch-all-not-last", {"egress": [{"hosts": ["./*"]},
                                       {"port": {"number": 80, "protocol": "HTTP"},
                                        "hosts": ["./*"]}]},
     [("error", "spec.egress[0]", "the egress listener with empty port should be the last"),
      ("error", "spec.egress[1].port", "egress listeners on a port is not supported")]),
    # Fields sailmesh does not carry out are refused by name, never ignored.
    ("ingress", {"ingress": [{"port": {"number": 9080, "protocol": "HTTP", "name": "http"},
                              "defaultEndpoint": "127.0.0.1:8080"}]},
     [("error", "spec.ingress[0]", "ingress listeners is not supported by sailmesh")]),
    ("egress-port", {"egress": [{"port": {"number": 9080, "protocol": "HTTP"},
                                 "hosts": ["./*"]}]},
     [("error", "spec.egress[0].port", "egress listeners on a port is not supported")]),
    ("egress-bind", _egress("./*", bind="127.0.0.1"),
     [("error", "spec.egress[0].bind", "bind is not supported")]),
    ("capture-mode", _egress("./*", captureMode="NONE"),
     [("error", "spec.egress[0].captureMode", "captureMode is not supported")]),
    ("egress-proxy", {"outboundTrafficPolicy": {
        "mode": "ALLOW_ANY", "egressProxy": {"host": "foo.bar", "port": {"number": 443}}}},
     [("error", "spec.outboundTrafficPolicy.egressProxy", "egressProxy is not supported")]),
    ("egress-proxy-registry-only", {"outboundTrafficPolicy": {
        "mode": "REGISTRY_ONLY", "egressProxy": {"host": "foo.bar"}}},
     [("error", "spec.outboundTrafficPolicy.egressProxy",
       "egress_proxy must be set only with ALLOW_ANY")]),
    ("inbound-pool", {"inboundConnectionPool": {"http": {"http1MaxPendingRequests": 1}}},
     [("error", "spec.inboundConnectionPool", "inboundConnectionPool is not supported")]),
]


@pytest.mark.parametrize(("case", "spec", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rule(case: str, spec: dict[str, Any], expected: Expected) -> None:
    found = validate(_sidecar(spec))
    assert [(p.severity, p.field) for p in found] == [(s, f) for s, f, _ in expected], [
        str(p) for p in found]
    for problem, (_, _, fragment) in zip(found, expected, strict=True):
        assert fragment in str(problem), f"{fragment!r} not in {problem}"
        assert problem.ref == "Sidecar test/default"


def test_apply_error_names_file_line_kind_and_field(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text("apiVersion: networking.istio.io/v1beta1\nkind: Sidecar\nmetadata:\n"
                    "  name: default\n  namespace: test\nspec:\n  egress:\n  - hosts:\n"
                    "    - ./*\n    - reviews\n")
    with pytest.raises(ResourceError) as raised:
        load_paths([path], "test")
    assert str(raised.value) == (
        f"{path}:10: Sidecar test/default: spec.egress[0].hosts[1]: invalid host "
        '"reviews": host must be of form namespace/dnsName')


@pytest.mark.parametrize("api", ["networking.istio.io/v1alpha3", "networking.istio.io/v1beta1",
                                 "networking.istio.io/v1"])
def test_every_api_version_loads(api: str, tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text(f"apiVersion: {api}\nkind: Sidecar\nmetadata: {{name: default}}\n"
                    "spec:\n  egress:\n  - hosts: ['./*', 'istio-system/*']\n")
    loaded = load_paths([path], "test")
    assert [r.ref for r in loaded.resources] == ["Sidecar test/default"]


# --- which Sidecar applies -----------------------------------------------------------------

NS_DEFAULT = _sidecar(_egress("./*"), "default", created="2026-01-01T00:00:01Z")
NEWER_DEFAULT = _sidecar(_egress("*/*"), "newer", created="2026-01-01T00:00:09Z")
SELECTS_WEB = _sidecar({"workloadSelector": {"labels": {"app": "web"}}, **_egress("~/*")},
                       "web", created="2026-01-01T00:00:02Z")
ROOT_DEFAULT = _sidecar(_egress("./*", "istio-system/*"), "default", "istio-system",
                        created="2026-01-01T00:00:00Z")
ROOT_SELECTING = _sidecar({"workloadSelector": {"labels": {"app": "api"}}, **_egress("*/*")},
                          "api", "istio-system")
ALL = [ROOT_DEFAULT, ROOT_SELECTING, NS_DEFAULT, SELECTS_WEB, NEWER_DEFAULT]


@pytest.mark.parametrize(("namespace", "labels", "sidecars", "expected"), [
    ("test", {"app": "web", "v": "1"}, ALL, "Sidecar test/web"),  # selector first
    ("test", {"app": "api"}, ALL, "Sidecar test/default"),  # oldest default of the namespace
    ("prod", {"app": "web"}, ALL, "Sidecar istio-system/default"),  # root namespace's default
    ("prod", {"app": "api"}, ALL, "Sidecar istio-system/default"),  # root selectors stay home
    ("istio-system", {"app": "api"}, ALL, "Sidecar istio-system/api"),
    ("prod", {}, [NS_DEFAULT, SELECTS_WEB], None),  # no Sidecar: Istio's default scope
], ids=["selector", "namespace-default", "root-default", "root-selector-not-global",
        "root-own-selector", "none"])
def test_applying_sidecar(namespace: str, labels: dict[str, str], sidecars: list[Sidecar],
                          expected: str | None) -> None:
    found = applying_sidecar(sidecars, namespace, labels, "istio-system")
    assert (found.ref if found else None) == expected


def test_root_sidecar_dot_means_the_proxy_namespace() -> None:
    scope = scope_of(ROOT_DEFAULT, "prod")
    assert scope.imports == (("prod", "*"), ("istio-system", "*"))
    assert scope.sidecar == "Sidecar istio-system/default"
    assert scope_of(None, "prod") == SidecarScope("prod") and SidecarScope("prod").is_default


# --- what a scope imports ------------------------------------------------------------------


def _svc(name: str, namespace: str, *ports: int, hostname: str | None = None,
         export_to: tuple[str, ...] = ()) -> MeshService:
    return MeshService(namespace, name, {"app": name},
                       tuple(ServicePort(f"http-{p}", p, p, "TCP") for p in ports),
                       hostname=hostname, export_to=export_to,
                       resolution="DNS" if hostname else "EDS")


def _vs(name: str, namespace: str, hosts: list[str], *dests: dict[str, Any]) -> VirtualService:
    return VirtualService.model_validate({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hosts": hosts, "http": [{"route": [{"destination": d}]} for d in dests]}},
        by_alias=True, by_name=False)


SERVICES = {s.fqdn: s for s in [
    _svc("web", "test", 80), _svc("db", "data", 5432), _svc("ratings", "other", 9080, 9999),
    _svc("api", "egress", 443, hostname="api.example.com"),
    _svc("hidden", "other", 80, export_to=(".",)),
]}


def _resolve(host: str, namespace: str) -> str:
    return host if "." in host else f"{host}.{namespace}.svc.cluster.local"


@pytest.mark.parametrize(("imports", "expected"), [
    ((("test", "*"),), ["web.test.svc.cluster.local"]),
    ((("*", "*.example.com"),), ["api.example.com"]),
    ((("egress", "*.example.com"), ("data", "db.data.svc.cluster.local")),
     ["api.example.com", "db.data.svc.cluster.local"]),
    ((("~", "*"),), []),
    ((("*", "*"),), sorted(SERVICES)),
], ids=["own-namespace", "wildcard-dns-any-namespace", "exact-hosts", "nothing", "everything"])
def test_imported_services(imports: tuple[tuple[str, str], ...], expected: list[str]) -> None:
    scope = SidecarScope("test", "Sidecar test/default", imports)
    services, _ = import_registry(scope, SERVICES, {}, _resolve)
    assert list(services) == expected


def test_virtual_service_destinations_come_with_it() -> None:
    """Istio: the destinations of an imported VirtualService are imported, trimmed to the
    ports the routes name; a destination not exported to the proxy stays out."""
    vs = _vs("web", "test", ["web"], {"host": "ratings.other.svc.cluster.local",
                                      "port": {"number": 9080}},
             {"host": "hidden.other.svc.cluster.local"})
    elsewhere = _vs("db", "data", ["db"], {"host": "db"})
    by_host = {"web.test.svc.cluster.local": [vs], "db.data.svc.cluster.local": [elsewhere]}
    scope = SidecarScope("test", "Sidecar test/default", (("test", "*"),))
    services, virtual_services = import_registry(scope, SERVICES, by_host, _resolve)
    assert list(virtual_services) == ["web.test.svc.cluster.local"]
    assert list(services) == ["ratings.other.svc.cluster.local", "web.test.svc.cluster.local"]
    assert [p.port for p in services["ratings.other.svc.cluster.local"].ports] == [9080]
