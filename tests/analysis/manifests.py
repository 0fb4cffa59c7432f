"""Small manifest builders for analyzer tests: dicts in, YAML text out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CERTS = Path(__file__).parent.parent / "translate" / "certs"


def pem(name: str) -> str:
    return (CERTS / name).read_text()


def secret(name: str, ns: str = "istio-system", **keys: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
            "type": "Opaque", "stringData": keys}


def tls_secret(name: str, ns: str = "istio-system", host: str = "httpbin.example.com",
               key_host: str | None = None, **extra: str) -> dict[str, Any]:
    return secret(name, ns, **{"tls.crt": pem(f"{host}.crt"),
                               "tls.key": pem(f"{key_host or host}.key"), **extra})


def server(port: int = 443, protocol: str = "HTTPS", hosts: list[str] | None = None,
           **tls: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"port": {"number": port, "name": f"{protocol.lower()}-{port}",
                                    "protocol": protocol},
                           "hosts": hosts or ["*"]}
    if tls:
        out["tls"] = tls
    return out


def gateway(name: str, *servers: dict[str, Any], ns: str = "test",
            selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"istio": "ingressgateway"} if selector is None else selector,
                     "servers": list(servers)}}


def vs(name: str, hosts: list[str], gateways: list[str], ns: str = "test",
       http_to: str | None = "httpbin", tls_sni: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": hosts, "gateways": gateways}
    if http_to:
        spec["http"] = [{"route": [{"destination": {"host": http_to}}]}]
    if tls_sni:
        spec["tls"] = [{"match": [{"sniHosts": tls_sni}],
                        "route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}]}]
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}}
HTTPBIN = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": "test"},
           "spec": {"selector": {"app": "httpbin"}, "ports": [{"name": "http", "port": 8000}]}}
OPERATOR = {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
            "spec": {"meshConfig": {"meshMTLS": {"minProtocolVersion": "TLSV1_3"}}}}

# A sound terminating gateway: the base every case adds to or changes.
SIMPLE = server(hosts=["*"], mode="SIMPLE", credentialName="httpbin-cred")
BASE = [NAMESPACE, HTTPBIN, tls_secret("httpbin-cred"), gateway("gw", SIMPLE),
        vs("httpbin", ["httpbin.example.com"], ["gw"])]


def text(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


# --- mesh builders ----------------------------------------------------------------------------


def namespace(name: str, injected: bool = True) -> dict[str, Any]:
    labels = {"istio-injection": "enabled"} if injected else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def deployment(name: str, ns: str = "test", ports: tuple[int, ...] = (8080,),
               inject: bool | None = None, labels: dict[str, str] | None = None,
               sa: str | None = None) -> dict[str, Any]:
    labels = labels or {"app": name}
    meta: dict[str, Any] = {"labels": labels}
    if inject is not None:
        meta["annotations"] = {"sidecar.istio.io/inject": str(inject).lower()}
    spec: dict[str, Any] = {"containers": [{
        "name": name, "image": "docker.io/kong/httpbin",
        "command": ["gunicorn", "-b", f"0.0.0.0:{ports[0]}", "httpbin:app"],
        "ports": [{"containerPort": p} for p in ports]}]}
    if sa:
        spec["serviceAccountName"] = sa
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": meta, "spec": spec}}}


def service(name: str, ns: str = "test", ports: tuple[tuple[int, int, str], ...] = (
        (8000, 8080, "http"),), selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": selector or {"app": name},
                     "ports": [{"name": n, "port": p, "targetPort": t} for p, t, n in ports]}}


def peer_auth(name: str, ns: str = "test", mode: str | None = "STRICT",
              selector: dict[str, str] | None = None,
              ports: dict[int, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if mode:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = {p: {"mode": m} for p, m in ports.items()}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def dest_rule(name: str, host: str, ns: str = "test", mode: str | None = None,
              port: int | None = None, **tls: Any) -> dict[str, Any]:
    settings = {"mode": mode, **tls} if mode else None
    policy: dict[str, Any] = {}
    if settings and port is None:
        policy["tls"] = settings
    elif settings:
        policy["portLevelSettings"] = [{"port": {"number": port}, "tls": settings}]
    spec: dict[str, Any] = {"host": host}
    if policy:
        spec["trafficPolicy"] = policy
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def service_entry(name: str, hosts: list[str], ports: list[dict[str, Any]], ns: str = "test",
                  **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"hosts": hosts, "ports": ports, "resolution": "DNS", **spec}}


# A sound meshed pair: sleep → httpbin in an injected namespace, no policies.
MESH = [namespace("test"), deployment("sleep", ports=(80,)), service("sleep", ports=((80, 80, "http"),)),
        deployment("httpbin"), service("httpbin")]
