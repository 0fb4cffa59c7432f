"""Kubernetes core and apps kinds the seeds use: Namespace, ServiceAccount, Service,
Deployment, ConfigMap, Secret.

Fields that Kubernetes defines but sailmesh does not act on (resources, probes, security
contexts, scheduling) are accepted and kept, so that real manifests apply unchanged; names
that Kubernetes does not define are rejected.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, Strict

from sailmesh.resources.base import ObjectMeta, PortNumber, PortOrName, Resource, Spec

_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _check_base64(value: str) -> str:
    # Kubernetes decodes `data` values with strict standard base64 and rejects the object
    # otherwise ("illegal base64 data at input byte N"); checked per key so the error
    # names the key.
    bad = next((i for i, c in enumerate(value) if c not in _BASE64_ALPHABET), None)
    if bad is not None:
        raise ValueError(f"illegal base64 data at input byte {bad}")
    try:
        base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ValueError(f"illegal base64 data ({exc})") from exc
    return value


Base64Text = Annotated[str, AfterValidator(_check_base64)]


class Namespace(Resource):
    KIND: ClassVar[str] = "Namespace"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    NAMESPACED: ClassVar[bool] = False
    NAMES: ClassVar[tuple[str, ...]] = ("namespaces", "namespace", "ns")
    spec: dict[str, Any] | None = None
    status: dict[str, Any] | None = None


class ServiceAccount(Resource):
    KIND: ClassVar[str] = "ServiceAccount"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    NAMES: ClassVar[tuple[str, ...]] = ("serviceaccounts", "serviceaccount", "sa")
    secrets: list[dict[str, Any]] | None = None
    image_pull_secrets: list[dict[str, Any]] | None = None
    automount_service_account_token: bool | None = None


class ServicePort(Spec):
    name: str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    app_protocol: str | None = None
    port: PortNumber
    target_port: PortOrName | None = None
    node_port: PortNumber | None = None


class ServiceSpec(Spec):
    ports: list[ServicePort] = Field(default_factory=list)
    selector: dict[str, str] | None = None
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = "ClusterIP"
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    external_name: str | None = None
    session_affinity: str | None = None
    ip_families: list[str] | None = None
    ip_family_policy: str | None = None
    internal_traffic_policy: str | None = None
    external_traffic_policy: str | None = None
    publish_not_ready_addresses: bool | None = None


class Service(Resource):
    KIND: ClassVar[str] = "Service"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    NAMES: ClassVar[tuple[str, ...]] = ("services", "service", "svc")
    spec: ServiceSpec
    status: dict[str, Any] | None = None


class KeyToPath(Spec):
    key: str
    path: str
    mode: int | None = None


class ConfigMapVolumeSource(Spec):
    name: str
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class SecretVolumeSource(Spec):
    secret_name: str
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class ObjectFieldSelector(Spec):
    api_version: str | None = None
    field_path: str


class DownwardAPIVolumeFile(Spec):
    path: str
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: dict[str, Any] | None = None
    mode: int | None = None


class DownwardAPIVolumeSource(Spec):
    items: list[DownwardAPIVolumeFile] = Field(default_factory=list)
    default_mode: int | None = None


class ConfigMapProjection(Spec):
    name: str
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class SecretProjection(Spec):
    name: str
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class DownwardAPIProjection(Spec):
    items: list[DownwardAPIVolumeFile] = Field(default_factory=list)


class ServiceAccountTokenProjection(Spec):
    path: str
    audience: str | None = None
    expiration_seconds: int | None = None


class VolumeProjection(Spec):
    config_map: ConfigMapProjection | None = None
    secret: SecretProjection | None = None
    downward_api: DownwardAPIProjection | None = Field(default=None, alias="downwardAPI")
    service_account_token: ServiceAccountTokenProjection | None = None


class ProjectedVolumeSource(Spec):
    sources: list[VolumeProjection] = Field(default_factory=list)
    default_mode: int | None = None


class Volume(Spec):
    name: str
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    empty_dir: dict[str, Any] | None = None
    projected: ProjectedVolumeSource | None = None
    downward_api: DownwardAPIVolumeSource | None = Field(default=None, alias="downwardAPI")


class VolumeMount(Spec):
    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None


# uids and gids as the Kubernetes API types them (int64, at most 2^31-1 in practice).
Id = Annotated[int, Strict(), Field(ge=0, le=2**31 - 1)]


class Capabilities(Spec):
    add: list[str] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)


class SecurityContext(Spec):
    """A container's securityContext; the fields below the line are accepted, not acted on."""

    run_as_user: Id | None = None
    run_as_group: Id | None = None
    run_as_non_root: bool | None = None
    capabilities: Capabilities | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    privileged: bool | None = None
    # ---
    proc_mount: str | None = None
    se_linux_options: dict[str, Any] | None = None
    seccomp_profile: dict[str, Any] | None = None
    app_armor_profile: dict[str, Any] | None = None
    windows_options: dict[str, Any] | None = None


class PodSecurityContext(Spec):
    """A pod's securityContext: defaults for its containers' uid, gid and groups."""

    run_as_user: Id | None = None
    run_as_group: Id | None = None
    run_as_non_root: bool | None = None
    supplemental_groups: list[Id] = Field(default_factory=list)
    # Accepted, not acted on.
    fs_group: Id | None = None
    fs_group_change_policy: str | None = None
    supplemental_groups_policy: str | None = None
    sysctls: list[dict[str, Any]] | None = None
    se_linux_options: dict[str, Any] | None = None
    se_linux_change_policy: str | None = None
    seccomp_profile: dict[str, Any] | None = None
    app_armor_profile: dict[str, Any] | None = None
    windows_options: dict[str, Any] | None = None


class EnvVar(Spec):
    name: str
    value: str | None = None
    value_from: dict[str, Any] | None = None


class ContainerPort(Spec):
    container_port: PortNumber
    name: str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    host_port: PortNumber | None = None


class Container(Spec):
    name: str
    image: str | None = None
    image_pull_policy: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    env: list[EnvVar] = Field(default_factory=list)
    env_from: list[dict[str, Any]] | None = None
    ports: list[ContainerPort] = Field(default_factory=list)
    volume_mounts: list[VolumeMount] = Field(default_factory=list)
    # Accepted, not acted on locally.
    resources: dict[str, Any] | None = None
    liveness_probe: dict[str, Any] | None = None
    readiness_probe: dict[str, Any] | None = None
    startup_probe: dict[str, Any] | None = None
    security_context: SecurityContext | None = None
    lifecycle: dict[str, Any] | None = None
    stdin: bool | None = None
    tty: bool | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None


class PodSpec(Spec):
    containers: list[Container] = Field(min_length=1)
    init_containers: list[Container] | None = None
    volumes: list[Volume] = Field(default_factory=list)
    service_account_name: str | None = None
    service_account: str | None = None
    automount_service_account_token: bool | None = None
    termination_grace_period_seconds: int | None = None
    # Accepted, not acted on locally.
    restart_policy: str | None = None
    dns_policy: str | None = None
    node_selector: dict[str, str] | None = None
    affinity: dict[str, Any] | None = None
    tolerations: list[dict[str, Any]] | None = None
    security_context: PodSecurityContext | None = None
    image_pull_secrets: list[dict[str, Any]] | None = None
    scheduler_name: str | None = None
    priority_class_name: str | None = None
    host_network: bool | None = None
    host_users: bool | None = None
    hostname: str | None = None
    subdomain: str | None = None

    @property
    def service_account_or_default(self) -> str:
        return self.service_account_name or self.service_account or "default"


class PodTemplateMeta(Spec):
    name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: str | None = None


class PodTemplate(Spec):
    metadata: PodTemplateMeta = Field(default_factory=PodTemplateMeta)
    spec: PodSpec


class LabelSelector(Spec):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[dict[str, Any]] | None = None


class DeploymentSpec(Spec):
    replicas: Annotated[int, Strict()] = Field(default=1, ge=0)
    selector: LabelSelector
    template: PodTemplate
    strategy: dict[str, Any] | None = None
    min_ready_seconds: int | None = None
    revision_history_limit: int | None = None
    progress_deadline_seconds: int | None = None
    paused: bool | None = None

    # That the selector matches the template labels is checked in resources.validation,
    # where the problem can name the field it is about.


class Deployment(Resource):
    KIND: ClassVar[str] = "Deployment"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apps/v1",)
    NAMES: ClassVar[tuple[str, ...]] = ("deployments", "deployment", "deploy")
    spec: DeploymentSpec
    status: dict[str, Any] | None = None

    def template_hash(self) -> str:
        """Like the pod-template-hash label: changes when the pod template changes."""
        body = self.spec.template.model_dump_json(by_alias=True, exclude_none=True)
        return hashlib.sha256(body.encode()).hexdigest()[:10]


class ConfigMap(Resource):
    KIND: ClassVar[str] = "ConfigMap"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    NAMES: ClassVar[tuple[str, ...]] = ("configmaps", "configmap", "cm")
    data: dict[str, str] = Field(default_factory=dict)
    binary_data: dict[str, Base64Text] = Field(default_factory=dict)
    immutable: bool | None = None

    def files(self) -> dict[str, bytes]:
        out = {k: v.encode() for k, v in self.data.items()}
        out.update({k: base64.b64decode(v) for k, v in self.binary_data.items()})
        return out


SECRET_TYPES = (
    "Opaque",
    "kubernetes.io/tls",
    "kubernetes.io/service-account-token",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "istio.io/ca-root",
    "istio.io/key-and-cert",
)


class Secret(Resource):
    KIND: ClassVar[str] = "Secret"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    NAMES: ClassVar[tuple[str, ...]] = ("secrets", "secret")
    type: str = "Opaque"
    data: dict[str, Base64Text] = Field(default_factory=dict)
    string_data: dict[str, str] = Field(default_factory=dict)
    immutable: bool | None = None

    # kubernetes.io/tls key rules live in resources.validation (they name `data[tls.crt]`).

    def values(self) -> dict[str, bytes]:
        """Decoded data; stringData wins over data for the same key, as in Kubernetes."""
        out = {k: base64.b64decode(v) for k, v in self.data.items()}
        out.update({k: v.encode() for k, v in self.string_data.items()})
        return out


__all__ = [
    "ConfigMap",
    "Container",
    "Deployment",
    "Namespace",
    "ObjectMeta",
    "PodSpec",
    "Secret",
    "Service",
    "ServiceAccount",
]
