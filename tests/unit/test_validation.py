"""Field-level rules of `validation.validate`, one table row per rule (and its clean twin).

Each row builds one resource from a YAML-shaped dict and lists exactly the findings
expected: (severity, field path, message fragment). An empty list means "accepted".
"""

from __future__ import annotations

from typing import Any

import pytest

from sailmesh.resources.base import Resource
from sailmesh.resources.kinds import KINDS
from sailmesh.resources.names import did_you_mean, host_within, wildcard_host
from sailmesh.resources.validation import validate

NET = "networking.istio.io/v1beta1"
Expected = list[tuple[str, str, str]]


def _gateway(*servers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": NET,
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "test"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": list(servers)},
    }


def _server(
    protocol: str = "HTTPS",
    tls: dict[str, Any] | None = None,
    name: str | None = "p",
    hosts: list[str] | None = None,
    number: int = 443,
) -> dict[str, Any]:
    port: dict[str, Any] = {"number": number, "protocol": protocol}
    if name:
        port["name"] = name
    server: dict[str, Any] = {"port": port, "hosts": hosts or ["a.example.com"]}
    if tls is not None:
        server["tls"] = tls
    return server


def _kind(kind: str, spec: dict[str, Any], name: str = "x", **top: Any) -> dict[str, Any]:
    api = {
        "Service": "v1",
        "Secret": "v1",
        "Deployment": "apps/v1",
        "PeerAuthentication": "security.istio.io/v1",
    }.get(kind, NET)
    body = {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "test"}}
    if spec:
        body["spec"] = spec
    return {**body, **top}


def _dr_tls(tls: dict[str, Any]) -> dict[str, Any]:
    return _kind("DestinationRule", {"host": "h.example.com", "trafficPolicy": {"tls": tls}})


def _vs(**spec: Any) -> dict[str, Any]:
    return _kind("VirtualService", spec)


ROUTE = [{"destination": {"host": "h"}}]
T = "spec.servers[0].tls"
SIMPLE = {"mode": "SIMPLE", "credentialName": "c"}

CASES: list[tuple[str, dict[str, Any], Expected]] = [
    # --- Gateway ports, protocols, hosts
    ("gw-clean-simple", _gateway(_server(tls=SIMPLE)), []),
    ("gw-protocol-case-insensitive", _gateway(_server("https", tls=SIMPLE)), []),
    (
        "gw-port-name-unique",
        _gateway(_server(tls=SIMPLE), _server("HTTP", number=80)),
        [("error", "spec.servers[1].port.name", 'duplicate name "p"')],
    ),
    (
        "gw-port-name-required",
        _gateway(_server("HTTP", name=None, number=80)),
        [("error", "spec.servers[0].port.name", "port name must be set")],
    ),
    (
        "gw-unknown-protocol",
        _gateway(_server("HTTPX")),
        [("error", "spec.servers[0].port.protocol", 'unknown protocol "HTTPX"')],
    ),
    (
        "gw-host-forms",
        _gateway(
            _server("HTTP", hosts=["*", "./a.example.com", "*/b.example.com", "test/*.example.com", "svc"])
        ),
        [],
    ),
    (
        "gw-host-suffix-wildcard",
        _gateway(_server("HTTP", hosts=["*foo.example.com"])),
        [("error", "spec.servers[0].hosts[0]", "a wildcard must be the whole first label")],
    ),
    (
        "gw-host-too-many-slashes",
        _gateway(_server("HTTP", hosts=["a/b/c"])),
        [("error", "spec.servers[0].hosts[0]", 'expected "namespace/host"')],
    ),
    (
        "gw-host-bad-namespace",
        _gateway(_server("HTTP", hosts=["Bad_NS/a.example.com"])),
        [("error", "spec.servers[0].hosts[0]", 'namespace "Bad_NS" is not a valid')],
    ),
    # --- Gateway TLS presence per protocol
    (
        "gw-tls-protocol-needs-tls",
        _gateway(_server("TLS")),
        [("error", "spec.servers[0]", "must have TLS settings for HTTPS/TLS")],
    ),
    ("gw-http-redirect-ok", _gateway(_server("HTTP", tls={"httpsRedirect": True}, number=80)), []),
    (
        "gw-http-with-termination",
        _gateway(_server("HTTP", tls=SIMPLE, number=80)),
        [("error", T, "plain text HTTP ports")],
    ),
    (
        "gw-tcp-with-tls",
        _gateway(_server("TCP", tls=SIMPLE, number=31400)),
        [("error", T, "non HTTPS/TLS ports")],
    ),
    # --- Gateway TLS modes and credentials
    ("gw-mutual-credential", _gateway(_server(tls={"mode": "MUTUAL", "credentialName": "c"})), []),
    (
        "gw-optional-mutual-files",
        _gateway(
            _server(
                tls={
                    "mode": "OPTIONAL_MUTUAL",
                    "serverCertificate": "/c",
                    "privateKey": "/k",
                    "caCertificates": "/ca",
                }
            )
        ),
        [],
    ),
    (
        "gw-simple-cert-without-key",
        _gateway(_server(tls={"mode": "SIMPLE", "serverCertificate": "/c"})),
        [("error", f"{T}.privateKey", "SIMPLE TLS requires a private key")],
    ),
    (
        "gw-credential-name-and-names",
        _gateway(_server(tls={"mode": "SIMPLE", "credentialName": "a", "credentialNames": ["b"]})),
        [("error", T, "found credentialName and credentialNames")],
    ),
    ("gw-istio-mutual-clean", _gateway(_server(tls={"mode": "ISTIO_MUTUAL"})), []),
    (
        "gw-istio-mutual-files",
        _gateway(_server(tls={"mode": "ISTIO_MUTUAL", "privateKey": "/k"})),
        [("error", f"{T}.privateKey", "ISTIO_MUTUAL TLS cannot have associated privateKey")],
    ),
    (
        "gw-passthrough-explicit-with-cert",
        _gateway(_server("TLS", tls={"mode": "PASSTHROUGH", "credentialName": "c"})),
        [("warning", f"{T}.mode", "PASSTHROUGH mode does not use certificates")],
    ),
    (
        "gw-tls-no-mode-credential",
        _gateway(_server("TLS", tls={"credentialName": "c"})),
        [("warning", f"{T}.mode", "defaults to PASSTHROUGH")],
    ),
    ("gw-passthrough-clean", _gateway(_server("TLS", tls={"mode": "PASSTHROUGH"})), []),
    (
        "gw-cross-namespace-credential-names",
        _gateway(_server(tls={"mode": "SIMPLE", "credentialNames": ["other/c"]})),
        [("error", f"{T}.credentialNames[0]", "Istio refuses cross-namespace credentials")],
    ),
    (
        "gw-min-above-max",
        _gateway(_server(tls={**SIMPLE, "minProtocolVersion": "TLSV1_3", "maxProtocolVersion": "TLSV1_2"})),
        [("error", f"{T}.minProtocolVersion", "TLSV1_3 is higher than maxProtocolVersion TLSV1_2")],
    ),
    (
        "gw-old-tls-with-ciphers",
        _gateway(_server(tls={**SIMPLE, "minProtocolVersion": "TLSV1_1", "cipherSuites": ["AES128-SHA"]})),
        [],
    ),
    (
        "gw-crl-with-credential",
        _gateway(_server(tls={"mode": "MUTUAL", "credentialName": "c", "caCrl": "/crl"})),
        [("error", f"{T}.caCrl", "CRL is not supported with credentialName")],
    ),
    # --- VirtualService
    ("vs-delegate-without-hosts", _vs(http=[{"route": ROUTE}]), []),
    (
        "vs-no-hosts-with-gateway",
        _vs(gateways=["gw"], http=[{"route": ROUTE}]),
        [("error", "spec.hosts", "must have at least one host")],
    ),
    (
        "vs-gateway-names",
        _vs(hosts=["h.example.com"], gateways=["mesh", "gw", "ns/gw", "a/b/c"], http=[{"route": ROUTE}]),
        [("error", "spec.gateways[3]", 'invalid gateway name "a/b/c"')],
    ),
    (
        "vs-star-host-on-mesh",
        _vs(hosts=["*"], http=[{"route": ROUTE}]),
        [("error", "spec.hosts[0]", "not allowed for virtual services bound to the mesh gateway")],
    ),
    ("vs-star-host-on-gateway", _vs(hosts=["*"], gateways=["gw"], http=[{"route": ROUTE}]), []),
    (
        "vs-host-with-namespace",
        _vs(hosts=["ns/h"], http=[{"route": ROUTE}]),
        [("error", "spec.hosts[0]", "namespace prefix is not allowed")],
    ),
    (
        "vs-regex-invalid",
        _vs(hosts=["h"], http=[{"match": [{"uri": {"regex": "(a"}}], "route": ROUTE}]),
        [("error", "spec.http[0].match[0].uri.regex", 'invalid regex "(a"')],
    ),
    (
        "vs-regex-lookahead",
        _vs(hosts=["h"], http=[{"match": [{"uri": {"regex": "/a(?!b)"}}], "route": ROUTE}]),
        [("error", "spec.http[0].match[0].uri.regex", "RE2 does not support lookaround")],
    ),
    (
        "vs-regex-ok-and-header-presence",
        _vs(
            hosts=["h"],
            http=[{"match": [{"uri": {"regex": "/v[0-9]+/.*"}, "headers": {"x-user": {}}}], "route": ROUTE}],
        ),
        [],
    ),
    (
        "vs-empty-uri-match",
        _vs(hosts=["h"], http=[{"match": [{"uri": {}}], "route": ROUTE}]),
        [("error", "spec.http[0].match[0].uri", "one of exact, prefix or regex must be set")],
    ),
    (
        "vs-header-two-kinds",
        _vs(
            hosts=["h"],
            http=[{"match": [{"headers": {"x-v": {"exact": "1", "regex": "1"}}}], "route": ROUTE}],
        ),
        [("error", "spec.http[0].match[0].headers[x-v]", "got exact and regex")],
    ),
    (
        "vs-http-without-action",
        _vs(hosts=["h"], http=[{"match": [{"uri": {"prefix": "/"}}]}]),
        [("error", "spec.http[0]", "HTTP route, redirect, direct response or delegate is required")],
    ),
    (
        "vs-weights-50-50",
        _vs(
            hosts=["h"],
            http=[
                {
                    "route": [
                        {"destination": {"host": "a"}, "weight": 50},
                        {"destination": {"host": "b"}, "weight": 50},
                    ]
                }
            ],
        ),
        [],
    ),
    (
        "vs-single-destination-weight-ignored",
        _vs(hosts=["h"], http=[{"route": [{"destination": {"host": "a"}, "weight": 30}]}]),
        [],
    ),
    (
        "vs-tcp-weights",
        _vs(
            hosts=["h"],
            tcp=[{"route": [{"destination": {"host": "a"}, "weight": 10}, {"destination": {"host": "b"}}]}],
        ),
        [("error", "spec.tcp[0].route", "total destination weight 10 != 100")],
    ),
    (
        "vs-sni-within-wildcard-host",
        _vs(
            hosts=["*.example.com"],
            gateways=["gw"],
            tls=[{"match": [{"sniHosts": ["a.example.com"]}], "route": ROUTE}],
        ),
        [],
    ),
    (
        "vs-sni-outside-hosts",
        _vs(
            hosts=["a.example.com"],
            gateways=["gw"],
            tls=[{"match": [{"sniHosts": ["b.example.com"]}], "route": ROUTE}],
        ),
        [("error", "spec.tls[0].match[0].sniHosts[0]", 'sniHost "b.example.com" is not covered')],
    ),
    (
        "vs-tls-without-route",
        _vs(hosts=["a"], gateways=["gw"], tls=[{"match": [{"sniHosts": ["a"]}]}]),
        [("error", "spec.tls[0].route", "TLS route is required")],
    ),
    # --- DestinationRule
    ("dr-simple-clean", _dr_tls({"mode": "SIMPLE"}), []),
    (
        "dr-simple-cert-without-key",
        _dr_tls({"mode": "SIMPLE", "clientCertificate": "/c"}),
        [("error", "spec.trafficPolicy.tls.privateKey", "private key required")],
    ),
    (
        "dr-mutual-without-anything",
        _dr_tls({"mode": "MUTUAL"}),
        [
            ("error", "spec.trafficPolicy.tls.clientCertificate", "client certificate required"),
            ("error", "spec.trafficPolicy.tls.privateKey", "private key required"),
        ],
    ),
    ("dr-mutual-credential", _dr_tls({"mode": "MUTUAL", "credentialName": "c"}), []),
    (
        "dr-credential-and-ca-file",
        _dr_tls({"mode": "SIMPLE", "credentialName": "c", "caCertificates": "/ca"}),
        [("error", "spec.trafficPolicy.tls.caCertificates", "if credentialName is set")],
    ),
    (
        "dr-insecure-with-ca",
        _dr_tls({"mode": "SIMPLE", "insecureSkipVerify": True, "caCertificates": "/ca"}),
        [("error", "spec.trafficPolicy.tls.insecureSkipVerify", "cannot specify caCertificates")],
    ),
    (
        "dr-subsets",
        _kind(
            "DestinationRule",
            {
                "host": "h",
                "subsets": [
                    {"name": "v1"},
                    {"name": "v1"},
                    {"name": "V2", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL", "credentialName": "c"}}},
                ],
            },
        ),
        [
            ("error", "spec.subsets[1].name", "duplicate subset names: v1"),
            ("error", "spec.subsets[2].name", 'Invalid value: "V2"'),
            ("error", "spec.subsets[2].trafficPolicy.tls.credentialName", "ISTIO_MUTUAL TLS cannot"),
        ],
    ),
    (
        "dr-port-level-without-port",
        _kind(
            "DestinationRule",
            {"host": "h", "trafficPolicy": {"portLevelSettings": [{"tls": {"mode": "SIMPLE"}}]}},
        ),
        [("error", "spec.trafficPolicy.portLevelSettings[0].port", "must have valid port")],
    ),
    ("dr-bad-host", _kind("DestinationRule", {"host": "a..b"}), [("error", "spec.host", "empty label")]),
    # --- PeerAuthentication
    (
        "pa-port-level-with-selector",
        _kind(
            "PeerAuthentication",
            {"selector": {"matchLabels": {"app": "a"}}, "portLevelMtls": {8080: {"mode": "DISABLE"}}},
        ),
        [],
    ),
    (
        "pa-port-level-empty-selector",
        _kind(
            "PeerAuthentication",
            {"selector": {"matchLabels": {}}, "portLevelMtls": {8080: {"mode": "DISABLE"}}},
        ),
        [("error", "spec.portLevelMtls", "requires a workload selector")],
    ),
    # --- Kubernetes kinds
    (
        "svc-ports",
        _kind(
            "Service", {"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}, {"port": 80}]}
        ),
        [
            ("error", "spec.ports[1].name", 'Duplicate value: "http"'),
            ("error", "spec.ports[2].name", "Required value"),
            ("error", "spec.ports[2]", "Duplicate value: port 80/TCP"),
        ],
    ),
    (
        "svc-no-ports",
        _kind("Service", {"selector": {"app": "a"}}),
        [("error", "spec.ports", "Required value")],
    ),
    ("svc-headless-no-ports", _kind("Service", {"clusterIP": "None"}), []),
    (
        "deploy-containers",
        _kind(
            "Deployment",
            {
                "selector": {"matchLabels": {}},
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "volumeMounts": [{"name": "certs", "mountPath": "/c"}]},
                            {"name": "app"},
                        ]
                    }
                },
            },
        ),
        [
            ("error", "spec.selector", "empty selector is invalid"),
            ("error", "spec.template.spec.containers[0].volumeMounts[0].name", 'Not found: "certs"'),
            ("error", "spec.template.spec.containers[1].name", 'Duplicate value: "app"'),
        ],
    ),
    (
        "secret-tls-string-data",
        _kind("Secret", {}, type="kubernetes.io/tls", stringData={"tls.crt": "c", "tls.key": "k"}),
        [],
    ),
    (
        "secret-tls-missing-key",
        _kind("Secret", {}, type="kubernetes.io/tls", data={"tls.crt": "YQ=="}),
        [("error", "data[tls.key]", "Required value")],
    ),
    (
        "namespace-name",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}},
        [("error", "metadata.name", "a lowercase RFC 1123 label")],
    ),
]


def _volume_deployment(volume: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "app", "namespace": "test"},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {
                "metadata": {"labels": {"app": "a"}},
                "spec": {"containers": [{"name": "a", "image": "nginx"}],
                         "volumes": [{"name": "v", **volume}]}}}}


_DOWN = {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}
CASES += [
    ("projected-ok", _volume_deployment({"projected": {"sources": [
        {"configMap": {"name": "cfg"}}, {"downwardAPI": {"items": [_DOWN]}},
        {"serviceAccountToken": {"path": "token", "audience": "istio-ca"}}]}}), []),
    ("projected-two-types-in-one-source", _volume_deployment({"projected": {"sources": [
        {"configMap": {"name": "cfg"}, "secret": {"name": "s"}}]}}),
     [("error", "spec.template.spec.volumes[0].projected.sources[0]",
       "may not specify more than 1 volume type")]),
    ("projected-duplicate-path", _volume_deployment({"projected": {"sources": [
        {"downwardAPI": {"items": [_DOWN]}},
        {"secret": {"name": "s", "items": [{"key": "k", "path": "labels"}]}}]}}),
     [("error", "spec.template.spec.volumes[0].projected.sources[1].secret",
       "conflicting duplicate paths")]),
    ("downward-unknown-field", _volume_deployment({"downwardAPI": {"items": [
        {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}]}}),
     [("error", "spec.template.spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath",
       'Unsupported value: "status.podIP"')]),
]


def _build(doc: dict[str, Any]) -> Resource:
    return KINDS[doc["kind"]].model_validate(doc, by_alias=True, by_name=False)


@pytest.mark.parametrize(("case", "doc", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rule(case: str, doc: dict[str, Any], expected: Expected) -> None:
    found = validate(_build(doc))
    assert [(p.severity, p.field) for p in found] == [(s, f) for s, f, _ in expected], [str(p) for p in found]
    for problem, (_, _, fragment) in zip(found, expected, strict=True):
        assert fragment in str(problem), f"{fragment!r} not in {problem}"
        assert problem.ref == _build(doc).ref
        assert problem.source == "" and problem.line is None


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("*", True),
        ("*.example.com", True),
        ("a-b.example.com", True),
        ("10.0.0.1", True),
        ("*.*.example.com", False),
        ("a.*.com", False),
        ("foo*.example.com", False),
        ("*foo.example.com", False),
        ("a_b.example.com", False),
        ("-a.example.com", False),
        ("", False),
        ("a." + "b" * 64, False),
    ],
)
def test_wildcard_host_grammar(host: str, ok: bool) -> None:
    assert (wildcard_host(host) is None) is ok


def test_host_within() -> None:
    assert host_within("a.example.com", "*.example.com")
    assert host_within("*.a.example.com", "*.example.com")
    assert not host_within("example.com", "*.example.com")
    assert not host_within("*.example.com", "a.example.com")
    assert host_within("anything", "*")


def test_did_you_mean() -> None:
    assert did_you_mean("credential_name", ["credentialName", "credentialNames"]) == "credentialName"
    assert did_you_mean("sever", ["servers", "selector"]) == "servers"
    assert did_you_mean("simple", ["PASSTHROUGH", "SIMPLE"]) == "SIMPLE"
    assert did_you_mean("zzzz", ["servers", "selector"]) is None
