"""Golden sidecar translation cases, each also checked by the real `envoy --mode validate`.

A case under sidecar_cases/ is laid out as the gateway cases are (input.yaml,
workloads.yaml naming the proxy pod, golden.yaml); the proxy is a sidecar. For validation
RDS is inlined, EDS becomes STATIC, SDS references become static secrets and the workload
identity `default` / `ROOTCA` is filled with test certificates (the CA side serves them
in a real run). `REFRESH_GOLDEN=1 pytest tests/translate` rewrites the goldens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cases_io import (
    CERTS,
    ENVOY,
    NOW,
    add_static_clusters,
    check_golden,
    envoy_validate,
    load_workloads,
    render,
)
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2

from sailmesh.model.mesh import MeshModel, build_model
from sailmesh.model.proxy import Proxy
from sailmesh.translate import ProxyConfig, translate_proxy

SIDECAR_CASES = Path(__file__).parent / "sidecar_cases"
CASE_DIRS = sorted(p for p in SIDECAR_CASES.iterdir() if (p / "input.yaml").exists())


def load_sidecar_case(path: Path) -> tuple[MeshModel, Proxy, dict[str, Path]]:
    snapshot, workloads, spec, pod = load_workloads(path)
    ns, name = pod.namespace, pod.name
    files = {k: CERTS / v for k, v in (spec.get("files") or {}).items()}
    return (build_model(snapshot, workloads), Proxy("sidecar", ns, name, pod.labels, pod.ip),
            files)


def sidecar_bootstrap(config: ProxyConfig, proxy: Proxy,
                      files: dict[str, Path]) -> bootstrap_pb2.Bootstrap:
    boot = bootstrap_pb2.Bootstrap()
    boot.node.id = proxy.node_id
    boot.node.cluster = f"{proxy.labels.get('app', proxy.name)}.{proxy.namespace}"
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
                _static_tls(chain.transport_socket, tls_pb2.DownstreamTlsContext(), files)
    for c in add_static_clusters(boot, config):
        if c.HasField("transport_socket"):
            _static_tls(c.transport_socket, tls_pb2.UpstreamTlsContext(), files)
        for match in c.transport_socket_matches:
            if match.transport_socket.typed_config.Is(tls_pb2.UpstreamTlsContext.DESCRIPTOR):
                _static_tls(match.transport_socket, tls_pb2.UpstreamTlsContext(), files)
    # The workload identity comes from the CA, not from translation.
    boot.static_resources.secrets.add().CopyFrom(secret_pb2.Secret(
        name="default", tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=_inline("httpbin.example.com.crt"),
            private_key=_inline("httpbin.example.com.key"))))
    boot.static_resources.secrets.add().CopyFrom(secret_pb2.Secret(
        name="ROOTCA", validation_context=common_pb2.CertificateValidationContext(
            trusted_ca=_inline("example.com.crt"))))
    return boot


def _static_tls(socket: base_pb2.TransportSocket,
                ctx: tls_pb2.DownstreamTlsContext | tls_pb2.UpstreamTlsContext,
                files: dict[str, Path]) -> None:
    socket.typed_config.Unpack(ctx)
    common = ctx.common_tls_context
    refs = list(common.tls_certificate_sds_secret_configs)
    if common.HasField("combined_validation_context"):
        refs.append(common.combined_validation_context.validation_context_sds_secret_config)
    for ref in refs:
        assert ref.name in ("default", "ROOTCA"), ref.name
        ref.ClearField("sds_config")  # a bare name refers to a static secret
    for cert in common.tls_certificates:
        _map(cert.certificate_chain, files)
        _map(cert.private_key, files)
    _map(common.validation_context.trusted_ca, files)
    socket.typed_config.Pack(ctx)


def _map(source: base_pb2.DataSource, files: dict[str, Path]) -> None:
    if source.filename:
        source.filename = str(files.get(source.filename, source.filename))


def _inline(cert_file: str) -> base_pb2.DataSource:
    return base_pb2.DataSource(inline_bytes=(CERTS / cert_file).read_bytes())


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_sidecar_golden(case_dir: Path) -> None:
    model, proxy, _ = load_sidecar_case(case_dir)
    check_golden(case_dir, render(translate_proxy(model, proxy, now=NOW)))


@pytest.mark.skipif(not ENVOY.exists(), reason="envoy binary not installed in .venv")
@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_sidecar_envoy_accepts(case_dir: Path, tmp_path: Path) -> None:
    model, proxy, files = load_sidecar_case(case_dir)
    config = translate_proxy(model, proxy, now=NOW)
    assert "virtualInbound" in config.listeners and "virtualOutbound" in config.listeners
    result = envoy_validate(sidecar_bootstrap(config, proxy, files), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
