"""Shared pieces of every resource model: strict base classes and Kubernetes object metadata.

Owns: the pydantic configuration every kind uses (camelCase field names as in YAML,
unknown fields rejected, immutable instances). Must not know: files, Envoy, the store.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

# A TCP/UDP port as the Kubernetes API and Istio's CRDs type it: an integer 1 to 65535.
# Strict, as Kubernetes decodes JSON: `true` or "80" is not a port number.
PortNumber = Annotated[int, Strict(), Field(ge=1, le=65535)]
# Kubernetes IntOrString for ports (targetPort): a number, or a port name checked by rules.
PortOrName = Annotated[int, Strict(), Field(ge=1, le=65535)] | str


class Spec(BaseModel):
    """Base of every nested model: camelCase aliases, unknown fields are errors, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class OwnerReference(Spec):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    uid: str | None = None
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(Spec):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # Accepted so that `kubectl get -o yaml` output can be applied back; never acted on.
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    managed_fields: list[Any] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None


class Resource(Spec):
    """A top-level object: apiVersion, kind, metadata and the kind's own body."""

    # Set by each concrete kind.
    KIND: ClassVar[str] = ""
    API_VERSIONS: ClassVar[tuple[str, ...]] = ()
    NAMESPACED: ClassVar[bool] = True
    # Names kubectl accepts for this kind in `get`/`delete` (plural first).
    NAMES: ClassVar[tuple[str, ...]] = ()

    api_version: str
    kind: str
    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ""

    @property
    def ref(self) -> str:
        """`Kind ns/name` (or `Kind name` for cluster-scoped kinds), as errors print it."""
        if self.NAMESPACED:
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace if self.NAMESPACED else "", self.name)

    @property
    def type_name(self) -> str:
        """kubectl's `<resource>.<group>`, as `apply` prints it: `virtualservice.networking.istio.io`."""
        return type_name(self.kind, self.api_version)


def type_name(kind: str, api_version: str) -> str:
    """kubectl's `<resource>.<group>` prefix: `deployment.apps`, `gateway.networking.istio.io`
    (the core group has none: `service`)."""
    group = api_version.split("/")[0] if "/" in api_version else ""
    return f"{kind.lower()}.{group}" if group else kind.lower()
