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
