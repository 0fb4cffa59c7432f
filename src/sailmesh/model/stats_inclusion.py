"""Which of Envoy's own stats a proxy keeps: Istio's default inclusion list, and the pod
annotations and ProxyConfig that widen it.

Owns: the rule of Istio's bootstrap (pkg/bootstrap/config.go, getStatsOptions, and the
envoy_bootstrap.json template). Envoy creates every stat it knows unless a stats matcher
rejects it; Istio's proxies keep only an inclusion list. With it a sidecar at 1,000
Services keeps a few hundred stats instead of ~130,000 (a cluster alone has ~130), so
creating a cluster, reading `/stats` and the memory they hold cost a fraction.
- Always kept: prefixes `reporter=` (Istio's standard metrics), `cluster_manager`,
  `listener_manager`, `server`, `cluster.xds-grpc`, `wasm`, `component`, `istio`;
  suffixes `rbac.allowed`, `rbac.denied`, `shadow_allowed`, `shadow_denied`; the regex
  `vhost\\..*\\.route\\..*` (routes given a stat prefix).
- Widened per pod by the annotations `sidecar.istio.io/statsInclusionPrefixes`,
  `...Suffixes`, `...Regexps` (comma-separated), else by the ProxyConfig's
  `proxyStatsMatcher` (`inclusionPrefixes`, `inclusionSuffixes`, `inclusionRegexps`) from
  the pod's `proxy.istio.io/config` annotation, else from `meshConfig.defaultConfig`.
  For each list the annotation wins over the ProxyConfig; they are not merged.
Not done: Istio's `{pod_ip}` placeholder (a pod's address is not known when its proxy's
bootstrap is written), so a pattern holding it is kept as written.
Must not know: Envoy's configuration format (xds.bootstrap), where annotations come from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

PREFIXES_ANNOTATION = "sidecar.istio.io/statsInclusionPrefixes"
SUFFIXES_ANNOTATION = "sidecar.istio.io/statsInclusionSuffixes"
REGEXPS_ANNOTATION = "sidecar.istio.io/statsInclusionRegexps"
PROXY_CONFIG_ANNOTATION = "proxy.istio.io/config"

# Istio's required inclusions, in the order its bootstrap lists them.
_FIRST_PREFIXES = ("reporter=",)
_REQUIRED_PREFIXES = ("cluster_manager", "listener_manager", "server", "cluster.xds-grpc", "wasm")
_REQUIRED_SUFFIXES = ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")
_REQUIRED_REGEXPS = (r"vhost\..*\.route\..*",)
_LAST_PREFIXES = ("component", "istio")


class StatsInclusionError(ValueError):
    """A malformed annotation; `annotation` is the key it is about."""

    def __init__(self, annotation: str, message: str) -> None:
        super().__init__(message)
        self.annotation = annotation


@dataclass(frozen=True)
class StatsInclusion:
    """The stats a proxy keeps: a stat is kept when its name starts with one of `prefixes`,
    ends with one of `suffixes` or fully matches one of `regexps` (RE2)."""

    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    regexps: tuple[str, ...]


def stats_inclusion(annotations: Mapping[str, str] | None = None,
                    default_config: Mapping[str, Any] | None = None) -> StatsInclusion:
    """The inclusion list of a proxy with these pod annotations, under this
    `meshConfig.defaultConfig`. Raises StatsInclusionError on an unreadable annotation."""
    annotations = annotations or {}
    matcher = _proxy_stats_matcher(annotations, default_config or {})

    def chosen(annotation: str, field: str) -> tuple[str, ...]:
        raw = annotations.get(annotation, "")
        if raw:
            return tuple(p for p in raw.split(",") if p)
        value = matcher.get(field) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise StatsInclusionError(PROXY_CONFIG_ANNOTATION,
                                      f"proxyStatsMatcher.{field} must be a list of strings")
        return tuple(value)

    return StatsInclusion(
        prefixes=(*_FIRST_PREFIXES, *chosen(PREFIXES_ANNOTATION, "inclusionPrefixes"),
                  *_REQUIRED_PREFIXES, *_LAST_PREFIXES),
        suffixes=(*chosen(SUFFIXES_ANNOTATION, "inclusionSuffixes"), *_REQUIRED_SUFFIXES),
        regexps=(*chosen(REGEXPS_ANNOTATION, "inclusionRegexps"), *_REQUIRED_REGEXPS),
    )


def _proxy_stats_matcher(annotations: Mapping[str, str],
                         default_config: Mapping[str, Any]) -> Mapping[str, Any]:
    """proxyStatsMatcher of the pod's ProxyConfig: its annotation's, else the mesh's."""
    raw = annotations.get(PROXY_CONFIG_ANNOTATION, "")
    own: Any = {}
    if raw.strip():
        try:
            own = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise StatsInclusionError(PROXY_CONFIG_ANNOTATION, f"not valid YAML: {exc}") from exc
        if not isinstance(own, dict):
            raise StatsInclusionError(PROXY_CONFIG_ANNOTATION, "must be a ProxyConfig object")
    matcher = own.get("proxyStatsMatcher", default_config.get("proxyStatsMatcher")) or {}
    if not isinstance(matcher, dict):
        raise StatsInclusionError(PROXY_CONFIG_ANNOTATION, "proxyStatsMatcher must be an object")
    return matcher
