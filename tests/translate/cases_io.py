"""Test-side IO for translation cases: reading a case, rendering a golden, and turning a
ProxyConfig into a static Envoy bootstrap that `envoy --mode validate` can check.

A case directory holds `input.yaml` (manifests; a Secret's stringData value `@<file>`
is replaced by that file under certs/), `workloads.yaml` (running pods, which of them is
the proxy, optional `hostBindNetns`, and `files:` mapping paths named by Gateways to test
files for Envoy's validation) and `golden.yaml`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from google.protobuf import json_format

from sailmesh.model.mesh import MeshModel, build_model
from sailmesh.model.proxy import Proxy
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import Workload
from sailmesh.resources.loader import load_text
from sailmesh.translate import ProxyConfig, translate_proxy

HERE = Path(__file__).parent
CERTS = HERE / "certs"
CASES = HERE / "cases"
ENVOY = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "envoy"
# Fixed clock: goldens must not change with the day they are refreshed.
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    name: str
    model: MeshModel
    proxy: Proxy
    files: dict[str, Path]

    def translate(self) -> ProxyConfig:
        return translate_proxy(self.model, self.proxy, now=NOW)


def load_resources(text: str) -> Snapshot:
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        for key, value in (doc.get("stringData") or {}).items():
            if isinstance(value, str) and value.startswith("@"):
                doc["stringData"][key] = (CERTS / value[1:]).read_text()
    return Snapshot.of(load_text(yaml.safe_dump_all(docs), "input.yaml").resources)


def load_workloads(path: Path) -> tuple[Snapshot, list[Workload], dict[str, Any], Workload]:
    """A case's resources, its workloads, its workloads.yaml and the workload of its proxy."""
    snapshot = load_resources((path / "input.yaml").read_text())
    spec = yaml.safe_load((path / "workloads.yaml").read_text())
    workloads = [Workload(namespace=w["namespace"], name=w["name"], labels=w["labels"],
                          ip=w["ip"], service_account=w.get("serviceAccount", "default"),
                          ready=w.get("ready", True),
                          container_ports=w.get("containerPorts", {}))
                 for w in spec["workloads"]]
    ns, _, name = spec["proxy"].partition("/")
    pod = next(w for w in workloads if (w.namespace, w.name) == (ns, name))
    return snapshot, workloads, spec, pod


def check_golden(case_dir: Path, got: str) -> None:
    """Compare with golden.yaml; REFRESH_GOLDEN=1 rewrites it."""
    golden = case_dir / "golden.yaml"
    if os.environ.get("REFRESH_GOLDEN") == "1":
        golden.write_text(got)
    assert golden.exists(), f"{case_dir.name}: no golden.yaml yet (run with REFRESH_GOLDEN=1)"
    assert got == golden.read_text(), f"{case_dir.name}: golden differs (REFRESH_GOLDEN=1)"


def load_case(path: Path) -> Case:
    snapshot, workloads, spec, pod = load_workloads(path)
    ns, name = pod.namespace, pod.name
    proxy = Proxy("router", ns, name, pod.labels, pod.ip,
                  host_bind_netns=spec.get("hostBindNetns"))
    files = {k: CERTS / v for k, v in (spec.get("files") or {}).items()}
    return Case(path.name, build_model(snapshot, workloads), proxy, files)


def render(config: ProxyConfig) -> str:
    def dump(msgs: Any) -> dict[str, Any]:
        # A JSON round trip turns the OrderedDicts of packed Any messages into plain dicts.
        return {k: json.loads(json_format.MessageToJson(v, preserving_proto_field_name=True))
                for k, v in msgs.items()}

    secrets = dump(config.secrets)
    for s in secrets.values():
        key = s.get("tls_certificate", {}).get("private_key")
        if key:
            key["inline_bytes"] = "[redacted]"
    doc = {
        "listeners": dump(config.listeners), "routes": dump(config.routes),
        "clusters": dump(config.clusters), "endpoints": dump(config.endpoints),
        "secrets": secrets,
        "diagnostics": [str(d) for d in config.diagnostics],
    }
    return yaml.safe_dump(doc, sort_keys=True, width=100, allow_unicode=True)


# --- envoy --mode validate -------------------------------------------------------------------


def static_bootstrap(config: ProxyConfig, proxy: Proxy,
                     files: dict[str, Path]) -> bootstrap_pb2.Bootstrap:
    """RDS → inline route config, EDS → STATIC + its assignment, SDS → static secrets."""
    boot = bootstrap_pb2.Bootstrap()
    boot.node.id = proxy.node_id
    boot.node.cluster = f"{proxy.labels.get('app', proxy.name)}.{proxy.namespace}"
    referenced: set[str] = set()
    for listener in config.listeners.values():
        lst = boot.static_resources.listeners.add()
        lst.CopyFrom(listener)
        chains = list(lst.filter_chains)
        if lst.HasField("default_filter_chain"):
            chains.append(lst.default_filter_chain)
        for chain in chains:
            for f in chain.filters:
                if f.typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
                    hcm = hcm_pb2.HttpConnectionManager()
                    f.typed_config.Unpack(hcm)
                    if hcm.HasField("rds"):
                        hcm.route_config.CopyFrom(config.routes[hcm.rds.route_config_name])
                    f.typed_config.Pack(hcm)
            if chain.HasField("transport_socket"):
                referenced |= static_tls(chain.transport_socket, tls_pb2.DownstreamTlsContext(), files)
    for c in add_static_clusters(boot, config):
        sockets = [m.transport_socket for m in c.transport_socket_matches]
        if c.HasField("transport_socket"):
            sockets.append(c.transport_socket)
        for socket in sockets:
            if socket.typed_config.Is(tls_pb2.UpstreamTlsContext.DESCRIPTOR):
                referenced |= static_tls(socket, tls_pb2.UpstreamTlsContext(), files)
    for secret in config.secrets.values():
        boot.static_resources.secrets.add().CopyFrom(secret)
    # The workload identity (ISTIO_MUTUAL, auto mTLS) comes from the CA, not from translation.
    if "default" in referenced:
        boot.static_resources.secrets.add().CopyFrom(secret_pb2.Secret(
            name="default", tls_certificate=common_pb2.TlsCertificate(
                certificate_chain=_inline("httpbin.example.com.crt"),
                private_key=_inline("httpbin.example.com.key"))))
    if "ROOTCA" in referenced:
        boot.static_resources.secrets.add().CopyFrom(secret_pb2.Secret(
            name="ROOTCA", validation_context=common_pb2.CertificateValidationContext(
                trusted_ca=_inline("example.com.crt"))))
    return boot


def static_tls(socket: base_pb2.TransportSocket,
               ctx: tls_pb2.DownstreamTlsContext | tls_pb2.UpstreamTlsContext,
               files: dict[str, Path]) -> set[str]:
    """Point a TLS context's SDS references at static secrets and its file names at the
    test certificates; returns the secret names it refers to."""
    socket.typed_config.Unpack(ctx)
    common = ctx.common_tls_context
    refs = list(common.tls_certificate_sds_secret_configs)
    if common.HasField("combined_validation_context"):
        refs.append(common.combined_validation_context.validation_context_sds_secret_config)
    for ref in refs:
        ref.ClearField("sds_config")  # a bare name refers to a static secret
    for cert in common.tls_certificates:
        _map_file(cert.certificate_chain, files)
        _map_file(cert.private_key, files)
    _map_file(common.validation_context.trusted_ca, files)
    _map_file(common.validation_context.crl, files)
    socket.typed_config.Pack(ctx)
    return {ref.name for ref in refs}


def envoy_validate(boot: bootstrap_pb2.Bootstrap, workdir: Path) -> subprocess.CompletedProcess[str]:
    path = workdir / "bootstrap.json"
    path.write_text(json_format.MessageToJson(boot))
    return subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path), "-l", "warning"],
                          capture_output=True, text=True, timeout=60, check=False)


def _inline(cert_file: str) -> base_pb2.DataSource:
    return base_pb2.DataSource(inline_bytes=(CERTS / cert_file).read_bytes())


def _map_file(source: base_pb2.DataSource, files: dict[str, Path]) -> None:
    if source.filename:
        source.filename = str(files.get(source.filename, source.filename))


def add_static_clusters(boot: bootstrap_pb2.Bootstrap, config: ProxyConfig) -> list[Any]:
    """The config's clusters as static ones: EDS replaced by STATIC + its load assignment."""
    added = []
    for name, cluster in config.clusters.items():
        c = boot.static_resources.clusters.add()
        c.CopyFrom(cluster)
        if c.type == c.EDS:
            c.type = c.STATIC
            c.ClearField("eds_cluster_config")
            c.load_assignment.CopyFrom(config.endpoints[name])
        added.append(c)
    return added
