"""Istio security kinds: PeerAuthentication (security.istio.io/v1beta1 and v1)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from sailmesh.resources.base import Resource, Spec

SECURITY_VERSIONS = ("security.istio.io/v1beta1", "security.istio.io/v1")

MTLSMode = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]


class MutualTLS(Spec):
    mode: MTLSMode = "UNSET"


class WorkloadSelector(Spec):
    match_labels: dict[str, str] = Field(default_factory=dict)


class PeerAuthenticationSpec(Spec):
    selector: WorkloadSelector | None = None
    mtls: MutualTLS | None = None
    # Keyed by container port (Istio's rule), not by Service port.
    port_level_mtls: dict[int, MutualTLS] = Field(default_factory=dict)


class PeerAuthentication(Resource):
    KIND: ClassVar[str] = "PeerAuthentication"
    API_VERSIONS: ClassVar[tuple[str, ...]] = SECURITY_VERSIONS
    NAMES: ClassVar[tuple[str, ...]] = ("peerauthentications", "peerauthentication", "pa")
    spec: PeerAuthenticationSpec = Field(default_factory=PeerAuthenticationSpec)
