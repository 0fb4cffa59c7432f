"""sailmesh: Istio's traffic-security API on real Envoy proxies, on one Linux machine."""

__version__ = "0.1.0"
# The Istio release whose API and behaviour sailmesh follows (what `version` reports).
ISTIO_VERSION = "1.24.0"
