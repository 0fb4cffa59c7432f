"""Which Envoy stats a proxy keeps: Istio's default inclusion list and what widens it
(pkg/bootstrap/config.go getStatsOptions), and the matcher the bootstrap gives Envoy."""

from __future__ import annotations

from pathlib import Path

import pytest

from sailmesh.model.stats_inclusion import StatsInclusionError, stats_inclusion
from sailmesh.xds import envoy_bootstrap

REQUIRED = ("cluster_manager", "listener_manager", "server", "cluster.xds-grpc", "wasm")


def test_istio_default_keeps_only_its_inclusion_list() -> None:
    default = stats_inclusion()
    assert default.prefixes == ("reporter=", *REQUIRED, "component", "istio")
    assert default.suffixes == ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")
    assert default.regexps == (r"vhost\..*\.route\..*",)


@pytest.mark.parametrize(("annotations", "default_config", "prefixes", "suffixes"), [
    # The annotations, comma-separated.
    ({"sidecar.istio.io/statsInclusionPrefixes": "listener,cluster.outbound",
      "sidecar.istio.io/statsInclusionSuffixes": "ssl.handshake"}, None,
     ("listener", "cluster.outbound"), ("ssl.handshake",)),
    # The pod's ProxyConfig.
    ({"proxy.istio.io/config": "proxyStatsMatcher:\n  inclusionPrefixes: [listener]\n"}, None,
     ("listener",), ()),
    # meshConfig.defaultConfig, when the pod's ProxyConfig has no proxyStatsMatcher.
    ({"proxy.istio.io/config": "concurrency: 2\n"},
     {"proxyStatsMatcher": {"inclusionSuffixes": ["upstream_rq_total"]}}, (), ("upstream_rq_total",)),
    # The annotation wins over the ProxyConfig list; lists are not merged.
    ({"sidecar.istio.io/statsInclusionPrefixes": "http",
      "proxy.istio.io/config": "proxyStatsMatcher: {inclusionPrefixes: [listener]}"}, None,
     ("http",), ()),
])
def test_annotations_and_proxy_config_widen_it(annotations: dict[str, str],
                                               default_config: dict | None,
                                               prefixes: tuple[str, ...],
                                               suffixes: tuple[str, ...]) -> None:
    got = stats_inclusion(annotations, default_config)
    assert got.prefixes == ("reporter=", *prefixes, *REQUIRED, "component", "istio")
    assert got.suffixes[:len(suffixes)] == suffixes
    assert len(got.suffixes) == len(suffixes) + 4


@pytest.mark.parametrize(("value", "message"), [
    ("proxyStatsMatcher: [", "not valid YAML"),
    ("- a list", "must be a ProxyConfig object"),
    ("proxyStatsMatcher: {inclusionPrefixes: listener}", "must be a list of strings"),
])
def test_an_unreadable_proxy_config_is_named(value: str, message: str) -> None:
    with pytest.raises(StatsInclusionError) as caught:
        stats_inclusion({"proxy.istio.io/config": value})
    assert caught.value.annotation == "proxy.istio.io/config"
    assert message in str(caught.value)


def test_bootstrap_matcher_keeps_the_list_and_the_telemetry_stats(tmp_path: Path) -> None:
    wider = stats_inclusion({"sidecar.istio.io/statsInclusionRegexps": r"listener\..*"})
    bootstrap = envoy_bootstrap(node_id="sidecar~web-1.test", cluster="web.test",
                                xds_socket=tmp_path / "x.sock", admin_socket=tmp_path / "a.sock",
                                stats=wider)
    patterns = bootstrap["stats_config"]["stats_matcher"]["inclusion_list"]["patterns"]
    assert {"prefix": "sailmesh_telemetry."} in patterns  # the control plane reads them
    assert {"safe_regex": {"regex": r"listener\..*"}} in patterns
    assert {"prefix": "cluster.xds-grpc"} in patterns
    assert not any(p.get("prefix") == "cluster." for p in patterns)
