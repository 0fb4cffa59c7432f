"""sailmesh: Istio's traffic-security API on real Envoy proxies, on one Linux machine."""

__version__ = "0.1.0"
