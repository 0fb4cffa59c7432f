"""ServiceEntry validation, the registry entries the model builds from it, the external-world
stand-ins and DestinationRule workloadSelector precedence."""

from __future__ import annotations

import pytest

from sailmesh.model.external_world import external_hosts_entries
from sailmesh.model.mesh import build_model
from sailmesh.model.policy import effective_client_tls
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import Workload
from sailmesh.resources.errors import ResourceError
from sailmesh.resources.loader import load_text


def _snapshot(text: str) -> Snapshot:
    return Snapshot.of(load_text(text, "in.yaml").resources)


ENTRIES = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wiki, namespace: web, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  hosts: [wikipedia.org, www.wikipedia.org]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443},
          {number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: web}
spec:
  hosts: [db.example]
  addresses: [192.0.2.7/32]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 192.0.2.8, ports: {tcp: 6432}, labels: {zone: a}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dup, namespace: other, creationTimestamp: "2026-01-02T00:00:00Z"}
spec:
  hosts: [wikipedia.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: v1
kind: Service
metadata:
  name: wikipedia
  namespace: outside
  annotations: {sailmesh.io/external-hosts: "wikipedia.org, www.wikipedia.org"}
spec:
  ports: [{name: https, port: 443, targetPort: 8443}]
  selector: {app: wikipedia}
"""


def test_service_entry_hosts_ports_and_endpoints() -> None:
    model = build_model(_snapshot(ENTRIES), [])
    wiki = model.services["wikipedia.org"]
    assert (wiki.resolution, wiki.location, wiki.source) == ("DNS", "MESH_EXTERNAL",
                                                            "ServiceEntry web/wiki")
    assert [p.mesh_protocol for p in wiki.ports] == ["HTTP", "TLS"]
    # DNS without endpoints: the host itself, at targetPort (else the port number).
    assert [(e.ip, e.port) for e in model.endpoints[("wikipedia.org", 80)]] == [
        ("wikipedia.org", 443)]
    assert [(e.ip, e.port) for e in model.endpoints[("www.wikipedia.org", 443)]] == [
        ("www.wikipedia.org", 443)]
    db = model.services["db.example"]
    assert db.vip == "192.0.2.7"
    assert [(e.ip, e.port, e.labels) for e in model.endpoints[("db.example", 5432)]] == [
        ("192.0.2.8", 6432, (("zone", "a"),))]
    # The external stand-in is not in the registry. An entry for the same host in another
    # namespace is that namespace's definition (Istio keeps one per host and namespace), not
    # a conflict; both are exported everywhere, so every client sees the older one.
    assert "wikipedia.outside.svc.cluster.local" not in model.services
    assert not [d for d in model.diagnostics if d.code == "SE0601"]
    assert model.other_services[("wikipedia.org", "other")].source == "ServiceEntry other/dup"
    for ns in ("web", "other", "default"):
        assert model.for_namespace(ns).services["wikipedia.org"].source == "ServiceEntry web/wiki"


NGINX = """
apiVersion: v1
kind: Service
metadata:
  name: my-nginx
  namespace: mesh-external
  creationTimestamp: "2026-01-01T00:00:00Z"
  annotations: {{networking.istio.io/exportTo: "{service_export}"}}
spec:
  ports: [{{port: 443, protocol: TCP}}]
  selector: {{run: my-nginx}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: originate-mtls-for-nginx, namespace: default,
           creationTimestamp: "2026-01-02T00:00:00Z"}}
spec:
  hosts: [my-nginx.mesh-external.svc.cluster.local]
  exportTo: [{entry_export}]
  ports: [{{number: 80, name: http-port, protocol: HTTP, targetPort: 443}},
          {{number: 443, name: https-port, protocol: HTTPS}}]
  resolution: DNS
"""


@pytest.mark.parametrize(("service_export", "entry_export", "seen"), [
    # istio.io egress-tls-origination: the Service is kept to its namespace, the entry in
    # default is what every other namespace sees.
    (".", "", {"default": "entry", "mesh-external": "service", "istio-system": "entry"}),
    # Both exported everywhere: the older (the Service) wins for everyone.
    ("*", "", {"default": "service", "mesh-external": "service", "istio-system": "service"}),
    # A Kubernetes Service exported to a namespace wins there over any ServiceEntry for its
    # name, even one kept to that namespace (Istio: no "domain squatting").
    ("*", ".", {"default": "service", "mesh-external": "service", "istio-system": "service"}),
    ("*", "istio-system", {"default": "service", "mesh-external": "service",
                           "istio-system": "service"}),
    # Hidden from a namespace, the Service leaves it to the entry exported there by name.
    (".", "istio-system", {"default": "service", "mesh-external": "service",
                           "istio-system": "entry"}),
])
def test_a_service_entry_for_a_service_host_in_another_namespace(
        service_export: str, entry_export: str, seen: dict[str, str]) -> None:
    host = "my-nginx.mesh-external.svc.cluster.local"
    model = build_model(_snapshot(NGINX.format(service_export=service_export,
                                               entry_export=entry_export)), [])
    assert not [d for d in model.diagnostics if d.code == "SE0601"]
    for ns, which in seen.items():
        view = model.for_namespace(ns)
        svc = view.services[host]
        assert ("entry" if svc.source else "service") == which, ns
        # The analyzers' lookup gives what the proxy's view holds, None when it is hidden.
        assert model.service(host, ns) == (svc if svc.visible_to(ns) else None)
        if which == "entry":
            assert [p.port for p in svc.ports] == [80, 443]
            assert [(e.ip, e.port) for e in view.endpoints[(host, 80)]] == [(host, 443)]
        else:
            assert [p.port for p in svc.ports] == [443] and (host, 80) not in view.endpoints


def test_entries_for_one_host_merge_as_in_istio() -> None:
    """Same namespace, resolution, selector and exportTo: ports added, endpoints pooled.
    A different resolution does not merge: the oldest wins and the later one is reported."""
    def entry(name: str, at: str, ports: str, resolution: str = "STATIC",
              endpoints: str = "") -> str:
        return ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
                f"metadata: {{name: {name}, namespace: web, "
                f"creationTimestamp: '2026-01-01T00:00:0{at}Z'}}\n"
                f"spec: {{hosts: [api.example], ports: [{ports}], resolution: {resolution}"
                f"{endpoints}}}\n---\n")
    text = (entry("a", "1", "{number: 80, name: http, protocol: HTTP}",
                  endpoints=", endpoints: [{address: 192.0.2.1}]")
            + entry("b", "2", "{number: 80, name: http, protocol: HTTP}, "
                    "{number: 443, name: https, protocol: HTTPS}",
                    endpoints=", endpoints: [{address: 192.0.2.2}]")
            + entry("c", "3", "{number: 8080, name: http-alt, protocol: HTTP}", "DNS"))
    model = build_model(_snapshot(text), [])
    svc = model.services["api.example"]
    assert [p.port for p in svc.ports] == [80, 443] and svc.source == "ServiceEntry web/a"
    assert [e.ip for e in model.endpoints[("api.example", 80)]] == ["192.0.2.1", "192.0.2.2"]
    assert [e.ip for e in model.endpoints[("api.example", 443)]] == ["192.0.2.2"]
    assert ("api.example", 8080) not in model.endpoints
    assert [d.ref for d in model.diagnostics if d.code == "SE0601"] == ["ServiceEntry web/c"]


def test_external_hosts_map_to_the_stand_in_vip() -> None:
    rows = external_hosts_entries(_snapshot(ENTRIES), {("outside", "wikipedia"): "10.96.0.9"})
    assert rows == (("10.96.0.9", ("wikipedia.org", "www.wikipedia.org")),)


def test_export_to_hides_an_entry() -> None:
    model = build_model(_snapshot("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: a}
spec:
  hosts: [private.example]
  exportTo: ["."]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
"""), [])
    svc = model.services["private.example"]
    assert svc.visible_to("a") and not svc.visible_to("b")


def test_workload_selector_rule_wins_for_selected_pods_only() -> None:
    text = ENTRIES + """
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: all, namespace: web, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  host: wikipedia.org
  trafficPolicy: {tls: {mode: SIMPLE}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: sleep-only, namespace: web, creationTimestamp: "2026-01-01T00:00:01Z"}
spec:
  host: wikipedia.org
  workloadSelector: {matchLabels: {app: sleep}}
  trafficPolicy: {tls: {mode: MUTUAL, credentialName: client}}
"""
    model = build_model(_snapshot(text), [Workload("web", "sleep-1", {"app": "sleep"},
                                                   "10.244.0.5", "sleep", True)])
    assert effective_client_tls(model, "web", "wikipedia.org", 80,
                                client_labels={"app": "sleep"}).mode == "MUTUAL"
    assert effective_client_tls(model, "web", "wikipedia.org", 80,
                                client_labels={"app": "other"}).mode == "SIMPLE"
    # The service namespace of an entry host is its ServiceEntry's namespace.
    assert effective_client_tls(model, "elsewhere", "wikipedia.org", 80).source == (
        "DestinationRule web/all")


@pytest.mark.parametrize(("spec", "message"), [
    ('hosts: ["*.example.com"]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n'
     "  resolution: DNS", "cannot be resolved by DNS"),
    ("hosts: [a.example]\n  ports: [{number: 80, name: http, protocol: HTTP},"
     " {number: 80, name: h2, protocol: HTTP}]", "port number 80 is not unique"),
    ("hosts: [a.example]\n  ports: [{number: 80, name: http, protocol: SMTP}]",
     "unsupported protocol SMTP"),
    ("hosts: [a.example]\n  resolution: NONE\n  endpoints: [{address: 192.0.2.1}]",
     "no endpoints should be provided for resolution NONE"),
    ("hosts: [a.example]\n  resolution: DNS_ROUND_ROBIN\n"
     "  endpoints: [{address: a.example}, {address: b.example}]", "at most one endpoint"),
    ("hosts: [a.example]\n  workloadSelector: {labels: {app: x}}\n"
     "  endpoints: [{address: 192.0.2.1}]", "only one of workloadSelector or endpoints"),
    ("hosts: [a.example]\n  addresses: [10.0.0.300]", "invalid address 10.0.0.300"),
    ("hosts: [a.example]\n  addresses: [10.9.0.0/16]\n  resolution: DNS",
     "CIDR address 10.9.0.0/16 is allowed only with resolution NONE or STATIC"),
])
def test_service_entry_validation(spec: str, message: str) -> None:
    text = ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
            f"metadata: {{name: x, namespace: default}}\nspec:\n  {spec}\n")
    with pytest.raises(ResourceError) as info:
        load_text(text, "se.yaml")
    assert message in str(info.value)


def test_insecure_skip_verify_is_accepted_with_a_warning() -> None:
    result = load_text("""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: x, namespace: default}
spec:
  host: wikipedia.org
  trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}
""", "dr.yaml")
    assert len(result.resources) == 1
    assert ["insecureSkipVerify" in str(w) and "not verified" in str(w)
            for w in result.warnings] == [True]
