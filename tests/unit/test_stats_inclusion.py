"""Which Envoy stats a proxy keeps: Istio's default inclusion list and what widens it
(pkg/bootstrap/config.go getStatsOptions), and the matcher the bootstrap gives Envoy."""

from __future__ import annotations

import json
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


def test_istio_stats_inclusion_case(tmp_path: Path) -> None:
    """Istio's pkg/bootstrap case `stats_inclusion` (instance_test.go and its golden): the
    three annotations give Istio's set of patterns, each pod list before Istio's own of its
    kind (the order of an inclusion list does not change what it keeps). Its
    `http.{pod_ip}_` prefix is left out: sailmesh does not expand `{pod_ip}`."""
    upstream = ["upstream_rq_1xx", "upstream_rq_2xx", "upstream_rq_3xx", "upstream_rq_4xx",
                "upstream_rq_5xx", "upstream_rq_time", "upstream_cx_tx_bytes_total",
                "upstream_cx_rx_bytes_total", "upstream_cx_total"]
    downstream = [s.replace("upstream", "downstream") for s in upstream]
    regex = r"http.[0-9]*\.[0-9]*\.[0-9]*\.[0-9]*_8080.downstream_rq_time"
    got = stats_inclusion({
        "sidecar.istio.io/statsInclusionPrefixes": "prefix1,prefix2",
        "sidecar.istio.io/statsInclusionSuffixes": ",".join(["suffix1", "suffix2", *upstream,
                                                             *downstream]),
        "sidecar.istio.io/statsInclusionRegexps": regex,
    })
    bootstrap = envoy_bootstrap(node_id="sidecar~web-1.test", cluster="web.test",
                                xds_socket=tmp_path / "x.sock", admin_socket=tmp_path / "a.sock",
                                stats=got)
    patterns = bootstrap["stats_config"]["stats_matcher"]["inclusion_list"]["patterns"]
    istio = [{"prefix": p} for p in ("reporter=", "prefix1", "prefix2", *REQUIRED)]
    istio += [{"suffix": s} for s in ("suffix1", "suffix2", *upstream, *downstream,
                                      "rbac.allowed", "rbac.denied", "shadow_allowed",
                                      "shadow_denied")]
    istio += [{"safe_regex": {"regex": regex}}, {"safe_regex": {"regex": r"vhost\..*\.route\..*"}},
              {"prefix": "component"}, {"prefix": "istio"}]
    ours = [p for p in patterns if p != {"prefix": "sailmesh_telemetry."}]
    assert sorted(map(json.dumps, ours)) == sorted(map(json.dumps, istio))
    for kind in ("prefix", "suffix", "safe_regex"):
        assert [p for p in ours if kind in p] == [p for p in istio if kind in p]
