"""IstioOperator (install.istio.io/v1alpha1): only its meshConfig part is acted on.

The mesh config is the mesh-wide baseline: trust domain, auto mTLS, `meshMTLS` (sidecar
mTLS server side only) and `tlsDefaults` (gateways and sidecars' TLS baseline).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from sailmesh.resources.base import Resource, Spec
from sailmesh.resources.networking import TLSVersion


class MeshTLSConfig(Spec):
    min_protocol_version: TLSVersion = "TLS_AUTO"
    ecdh_curves: list[str] = Field(default_factory=list)
    cipher_suites: list[str] = Field(default_factory=list)


class MeshConfig(Spec):
    trust_domain: str = "cluster.local"
    trust_domain_aliases: list[str] = Field(default_factory=list)
    enable_auto_mtls: bool = True
    mesh_mtls: MeshTLSConfig = Field(default_factory=MeshTLSConfig, alias="meshMTLS")
    tls_defaults: MeshTLSConfig = Field(default_factory=MeshTLSConfig)
    root_namespace: str = "istio-system"
    outbound_traffic_policy: dict[str, Any] | None = None
    default_config: dict[str, Any] | None = None
    access_log_file: str | None = None
    access_log_encoding: str | None = None
    enable_tracing: bool | None = None
    extension_providers: list[dict[str, Any]] | None = None
    default_providers: dict[str, Any] | None = None
    # How long a sidecar's listener filters wait for the first bytes to tell TLS or HTTP
    # apart before taking the plain TCP chain (Istio's default 0s: wait without limit).
    protocol_detection_timeout: str = "0s"


class IstioOperatorSpec(Spec):
    mesh_config: MeshConfig = Field(default_factory=MeshConfig)
    # Other parts of an install are accepted and ignored: there is one local profile.
    profile: str | None = None
    hub: str | None = None
    tag: str | None = None
    revision: str | None = None
    namespace: str | None = None
    components: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    addon_components: dict[str, Any] | None = None


class IstioOperator(Resource):
    KIND: ClassVar[str] = "IstioOperator"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("install.istio.io/v1alpha1",)
    NAMES: ClassVar[tuple[str, ...]] = ("istiooperators", "istiooperator", "iop")
    spec: IstioOperatorSpec = Field(default_factory=IstioOperatorSpec)
