"""The mesh model: a Snapshot plus running workloads, indexed the way translation asks.

Owns: services by FQDN and their endpoints (records in `model.services`; other
namespaces' definitions of a host beside them, chosen per client in `registry_view`), the
gateway Service port → listener port mapping (merging itself is `gateway_merge`),
VirtualService binding to gateways, destination resolution, Secret lookup and the
cross-resource diagnostics found on the way.
Must not know: Envoy, IO, clocks. Problems become `Diagnostic`s, never log lines.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sailmesh.model.destination_bindings import binding_diagnostics
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.external_world import is_external_service, stand_in_addresses
from sailmesh.model.gateway_merge import GatewayMerge, merge_gateways
from sailmesh.model.hosts import DOMAIN_SUFFIX, fqdn
from sailmesh.model.indexes import SnapshotIndexes, build_indexes
from sailmesh.model.proxy import Proxy
from sailmesh.model.rbac import Access, service_account_may
from sailmesh.model.registry_view import Registry
from sailmesh.model.service_entries import OtherDefinitions, add_service_entries
from sailmesh.model.services import (
    Endpoint,
    MeshService,
    ServicePort,
    cluster_name,
    exported_to,
    service_export_to,
)
from sailmesh.model.sidecar_scope import (
    SidecarScope,
    applying_sidecar,
    import_registry,
    scope_of,
)
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import SelectorIndex, Workload, WorkloadIndex, selector_matches
from sailmesh.resources.core import Secret, Service
from sailmesh.resources.networking import (
    Destination,
    Gateway,
    HTTPMatchRequest,
    L4MatchAttributes,
    TLSMatchAttributes,
    VirtualService,
)
from sailmesh.resources.operator import IstioOperator, MeshConfig
from sailmesh.resources.sidecar import Sidecar

T = TypeVar("T")
_MISSING = object()


@dataclass(frozen=True)
class MeshModel:
    snapshot: Snapshot
    mesh: MeshConfig
    services: Mapping[str, MeshService]
    endpoints: Mapping[tuple[str, int], tuple[Endpoint, ...]]
    workloads: tuple[Workload, ...]
    diagnostics: tuple[Diagnostic, ...] = field(default=())
    # Names a pod's hosts file resolves, whatever its namespace → address (None until the
    # runtime allocates it): Services as `name.ns[.svc[.cluster.local]]` and the external
    # stand-ins' names. Offline, nothing else resolves inside a pod.
    pod_hosts: Mapping[str, str | None] = field(default_factory=dict)
    # Definitions of a host in other namespaces than the one in `services` (a ServiceEntry
    # for a Service's FQDN, say), by (host, namespace); their endpoints by (ns, host, port).
    other_services: Mapping[tuple[str, str], MeshService] = field(default_factory=dict)
    other_endpoints: Mapping[tuple[str, str, int], tuple[Endpoint, ...]] = field(
        default_factory=dict)
    # Kubernetes Services' identities by (FQDN, port): the service accounts of every pod the
    # Service lists for the port, ready or not (an EndpointSlice lists a starting pod with
    # `ready: false`; Istio's secure naming takes the accounts of every endpoint listed), so
    # a pod becoming ready changes its Service's endpoints, not its clusters.
    identities: Mapping[tuple[str, int], tuple[str, ...]] = field(default_factory=dict)

    @functools.cached_property
    def registry(self) -> Registry:
        return Registry(self.services, self.endpoints, self.other_services,
                        self.other_endpoints)

    def for_namespace(self, namespace: str) -> MeshModel:
        """The registry as a proxy in `namespace` sees it (`Registry.seen_from`)."""
        if not self.other_services:
            return self
        return self.shared(("registry seen from", namespace),
                           lambda: self._seen_from(namespace))

    def _seen_from(self, namespace: str) -> MeshModel:
        view = self.registry.seen_from(namespace)
        if view is self.registry:
            return self
        seen = dataclasses.replace(self, services=view.services, endpoints=view.endpoints,
                                   other_services={}, other_endpoints={})
        seen.__dict__["indexes"] = self.indexes  # same snapshot, same lookups
        return seen

    def sidecar_scope(self, proxy: Proxy) -> SidecarScope:
        """The scope of the Sidecar resource that applies to `proxy` (`sidecar_scope`);
        gateways and proxies without a Sidecar get the default one (everything)."""
        sidecars = self.snapshot.of_kind(Sidecar)
        if proxy.kind != "sidecar" or not sidecars:
            return SidecarScope(proxy.namespace)
        return scope_of(applying_sidecar(sidecars, proxy.namespace, proxy.labels,
                                         self.mesh.root_namespace), proxy.namespace)

    def scoped(self, scope: SidecarScope) -> MeshModel:
        """The model as a sidecar with `scope` sees it outbound: the namespace's registry
        cut to the services and VirtualServices the scope imports, the Sidecar's
        outboundTrafficPolicy in the mesh config. Shared by the proxies of equal scopes."""
        if scope.is_default:
            return self.for_namespace(scope.namespace)
        return self.shared(("sidecar scope", scope), lambda: self._scoped(scope))

    def _scoped(self, scope: SidecarScope) -> MeshModel:
        seen = self.for_namespace(scope.namespace)
        services, endpoints, virtual_services = import_registry(
            scope, self.registry, seen.indexes.mesh_services_by_host, seen.resolve_host)
        mesh = seen.mesh
        if scope.outbound_policy is not None:
            mesh = mesh.model_copy(update={"outbound_traffic_policy": {
                **(mesh.outbound_traffic_policy or {}), "mode": scope.outbound_policy}})
        out = dataclasses.replace(seen, mesh=mesh, services=services, endpoints=endpoints,
                                  other_services={}, other_endpoints={})
        out.__dict__["indexes"] = dataclasses.replace(
            seen.indexes, mesh_services_by_host=virtual_services)
        return out

    def service(self, host: str, client_ns: str) -> MeshService | None:
        """The definition of `host` a proxy in `client_ns` uses, None when none is exported
        to it: the one lookup of the running mesh (through `for_namespace`) and the
        analyzers."""
        return self.registry.service(host, client_ns)

    def service_endpoints(self, svc: MeshService, port: int) -> tuple[Endpoint, ...]:
        """The endpoints of a definition's port (one that `service` returned)."""
        return self.registry.endpoints_of(svc, port)

    def resolves_in_pods(self, address: str) -> bool:
        """Whether a DNS endpoint (an entry's host or endpoint address) resolves where
        Envoy looks it up: in the proxy's pod."""
        try:
            ipaddress.ip_address(address)
            return True
        except ValueError:
            return address.lower() in self.pod_hosts

    @functools.cached_property
    def indexes(self) -> SnapshotIndexes:
        """Lookups over the snapshot, built on first use and kept for this model's life."""
        return build_indexes(self.snapshot)

    @functools.cached_property
    def selecting_services(self) -> SelectorIndex[MeshService]:
        """Kubernetes Services (with a selector), by the pods they select."""
        return SelectorIndex((svc.namespace, svc.selector, svc) for svc in self.services.values()
                             if svc.hostname is None and svc.selector)

    @functools.cached_property
    def _shared(self) -> dict[Hashable, Any]:
        return {}

    @functools.cached_property
    def _carried(self) -> dict[Hashable, Any]:
        return {}

    def shared(self, key: Hashable, build: Callable[[], T]) -> T:
        """`build()`, computed once per model for `key`: a result that depends on this
        model and `key` alone, so every proxy of a push can share it (a service's clusters
        as one namespace sees them). A result carried over from an earlier model
        (`carry`) is used instead of building it again. Contract: callers must not mutate
        what it returns."""
        if key not in self._shared:
            carried = self._carried.pop(key, _MISSING)
            self._shared[key] = build() if carried is _MISSING else carried
        return self._shared[key]  # type: ignore[no-any-return]

    def shared_results(self) -> Mapping[Hashable, Any]:
        """The `shared` results this model built or used, by key."""
        return self._shared

    def carry(self, results: Mapping[Hashable, Any]) -> None:
        """Results of an earlier model that hold for this one too (the caller decides which;
        see `control.memo`); `shared` returns them instead of building them again."""
        self._carried.update(results)

    # --- gateways ------------------------------------------------------------------------

    def gateways_for(self, proxy: Proxy) -> GatewayMerge:
        """All servers of Gateways selecting `proxy`, merged as Istio does
        (`gateway_merge`)."""
        selecting = [gw for gw in self.snapshot.of_kind(Gateway)
                     if selector_matches(gw.spec.selector, proxy.labels)]
        if not selecting:
            return GatewayMerge((), ())
        return merge_gateways(selecting, self.gateway_port_map(proxy))

    def gateway_port_map(self, proxy: Proxy) -> dict[int, int]:
        """Service port → target port, from Services in the proxy's namespace selecting it.

        A named targetPort resolves through the proxy pod's container ports; a port that
        no Service declares keeps its own number (as Istio does).
        """
        container_ports: Mapping[str, int] = next(
            (w.container_ports for w in self.workloads
             if w.namespace == proxy.namespace and w.name == proxy.name), {})
        out: dict[int, int] = {}
        for svc in self.snapshot.of_kind(Service):
            sel = svc.spec.selector
            if svc.namespace != proxy.namespace or not sel or not selector_matches(sel,
                                                                                  proxy.labels):
                continue
            for p in svc.spec.ports:
                target = p.target_port
                if isinstance(target, str):
                    target = int(target) if target.isdigit() else container_ports.get(target)
                out.setdefault(p.port, target if isinstance(target, int) else p.port)
        return out

    def virtual_services_for(self, gateway_key: str) -> tuple[VirtualService, ...]:
        """VirtualServices bound to Gateway `ns/name`, oldest first."""
        return tuple(self.indexes.services_by_gateway.get(gateway_key, ()))

    # --- services, destinations, secrets --------------------------------------------------

    def mesh_virtual_service(self, host_fqdn: str, client_ns: str) -> VirtualService | None:
        """The VirtualService a sidecar in `client_ns` follows for a host. Istio (sidecars):
        VirtualServices are not merged; the oldest one bound to `mesh`, exported to the
        client and naming the host wins."""
        for vs in self.indexes.mesh_services_by_host.get(host_fqdn, ()):
            if exported_to(vs.spec.export_to, vs.namespace, client_ns):
                return vs
        return None

    def resolve_host(self, host: str, namespace: str) -> str:
        """A destination host → FQDN (`name.ns` is completed when that Service exists)."""
        name = fqdn(host, namespace)
        if name.count(".") == 1:
            candidate = f"{name}.{DOMAIN_SUFFIX}"
            if candidate in self.services:
                return candidate
        return name

    def destination_cluster(self, dest: Destination, namespace: str) -> str | None:
        """The cluster a route destination names, or None when its port cannot be known.

        Istio: the port comes from the destination, else from the service's only port.
        """
        host = self.resolve_host(dest.host, namespace)
        if dest.port is not None:
            return cluster_name(dest.port.number, host, dest.subset or "")
        svc = self.services.get(host)
        if svc is None or len(svc.ports) != 1:
            return None
        return cluster_name(svc.ports[0].port, host, dest.subset or "")

    def secret(self, namespace: str, name: str) -> Secret | None:
        return self.snapshot.get(Secret, namespace, name)

    def credential_access(self, proxy: Proxy) -> Access | None:
        """Whether `proxy` is served the certificates and keys of credentialNames (see
        `credentials`): for a sidecar, whether its pod's service account may list Secrets
        in its namespace; None (not checked) for gateways."""
        if proxy.kind != "sidecar":
            return None
        pod = next((w for w in self.workloads
                    if (w.namespace, w.name) == (proxy.namespace, proxy.name)), None)
        return self.secret_access(proxy.namespace,
                                  pod.service_account if pod is not None else "default")

    def secret_access(self, namespace: str, service_account: str) -> Access:
        """May ServiceAccount `namespace/service_account` list Secrets in its namespace
        (istiod's SubjectAccessReview before serving a credentialName's key)?"""
        return self.shared(("secret access", namespace, service_account),
                           lambda: service_account_may(self.snapshot, namespace,
                                                       service_account, "list", "secrets"))


def mesh_match_fits(match: HTTPMatchRequest | TLSMatchAttributes | L4MatchAttributes,
                    port: int, labels: Mapping[str, str], namespace: str) -> bool:
    """Whether a route match applies to a sidecar (`mesh`) in `namespace` with `labels`, for
    service port `port`: its port, gateways, sourceLabels and sourceNamespace."""
    return ((match.port is None or match.port == port)
            and (not match.gateways or "mesh" in match.gateways)
            and all(labels.get(k) == v for k, v in match.source_labels.items())
            and match.source_namespace in (None, namespace))


# --- building ------------------------------------------------------------------------------


# What Istio's installation profiles put in meshConfig (manifests/profiles/<name>.yaml),
# applied where the IstioOperator leaves the field unset: the demo profile logs every
# request to the proxy's stdout.
PROFILE_MESH_CONFIG: dict[str, dict[str, str]] = {"demo": {"access_log_file": "/dev/stdout"}}


def mesh_config(snapshot: Snapshot) -> MeshConfig:
    """The mesh configuration in force: the newest IstioOperator's (with its profile's
    meshConfig under it), else Istio's defaults."""
    operators = snapshot.of_kind(IstioOperator)
    if not operators:
        return MeshConfig()
    spec = operators[-1].spec
    defaults = PROFILE_MESH_CONFIG.get(spec.profile or "default", {})
    unset = {k: v for k, v in defaults.items() if getattr(spec.mesh_config, k) is None}
    return spec.mesh_config.model_copy(update=unset) if unset else spec.mesh_config


def build_model(snapshot: Snapshot, workloads: Sequence[Workload],
                mesh: MeshConfig | None = None,
                vips: Mapping[tuple[str, str], str] | None = None) -> MeshModel:
    """`vips`: ClusterIPs by (namespace, name), as the runtime allocated them."""
    if mesh is None:
        mesh = mesh_config(snapshot)
    services: dict[str, MeshService] = {}
    endpoints: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
    identities: dict[tuple[str, int], tuple[str, ...]] = {}
    pods = WorkloadIndex(workloads)
    for svc in snapshot.of_kind(Service):
        if is_external_service(svc):
            continue  # the local stand-in for the outside world is not in the registry
        ms = MeshService(
            namespace=svc.namespace, name=svc.name, selector=svc.spec.selector,
            ports=tuple(ServicePort(p.name, p.port, p.target_port, p.protocol, p.app_protocol)
                        for p in svc.spec.ports),
            vip=(vips or {}).get((svc.namespace, svc.name))
            or (svc.spec.cluster_ip if svc.spec.cluster_ip != "None" else None),
            export_to=service_export_to(svc), created=svc.metadata.creation_timestamp or "")
        services[ms.fqdn] = ms
        for port in ms.ports:
            listed = _listed(ms, port, pods)
            endpoints[(ms.fqdn, port.port)] = tuple(ep for ep, ready in listed if ready)
            identities[(ms.fqdn, port.port)] = tuple(sorted({ep.service_account
                                                             for ep, _ in listed}))
    others = OtherDefinitions()
    entry_diags = add_service_entries(snapshot, workloads, services, endpoints, others)
    model = MeshModel(snapshot=snapshot, mesh=mesh, services=services, endpoints=endpoints,
                      workloads=tuple(workloads))
    diags = [*entry_diags, *binding_diagnostics(model), *_merge_diagnostics(model)]
    return MeshModel(snapshot=snapshot, mesh=mesh, services=services, endpoints=endpoints,
                     workloads=tuple(workloads), diagnostics=tuple(dict.fromkeys(diags)),
                     pod_hosts=_pod_hosts(snapshot, vips or {}),
                     other_services=others.services, other_endpoints=others.endpoints,
                     identities=identities)


def _pod_hosts(snapshot: Snapshot, vips: Mapping[tuple[str, str], str]
               ) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for svc in snapshot.of_kind(Service):
        if not is_external_service(svc):
            vip = vips.get((svc.namespace, svc.name))
            for name in (f"{svc.name}.{svc.namespace}", f"{svc.name}.{svc.namespace}.svc",
                         f"{svc.name}.{svc.namespace}.{DOMAIN_SUFFIX}"):
                out[name] = vip
    for name, vip in stand_in_addresses(snapshot, vips).items():
        out.setdefault(name, vip)
    return out


def _listed(svc: MeshService, port: ServicePort,
            pods: WorkloadIndex) -> list[tuple[Endpoint, bool]]:
    """The port's endpoints as an EndpointSlice lists them: every selected pod with the
    target port, and whether it is ready (only ready ones take traffic)."""
    if not svc.selector:  # a Service without selector has no automatic endpoints
        return []
    out: list[tuple[Endpoint, bool]] = []
    for w in pods.selected(svc.namespace, svc.selector):
        target = port.target_port
        if target is None:
            number: int | None = port.port
        elif isinstance(target, int) or target.isdigit():
            number = int(target)
        else:  # named targetPort: the pod's container port of that name, else no endpoint
            number = w.container_ports.get(target)
        if number is not None:
            out.append((Endpoint(w.ip, number, f"{w.namespace}/{w.name}", w.service_account),
                        w.ready))
    return out


def _merge_diagnostics(model: MeshModel) -> list[Diagnostic]:
    """Gateway conflicts as seen by each distinct gateway workload that is running."""
    out: list[Diagnostic] = []
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for w in model.workloads:
        key = (w.namespace, tuple(sorted(w.labels.items())))
        if key in seen:
            continue
        seen.add(key)
        proxy = Proxy("router", w.namespace, w.name, w.labels, w.ip)
        out.extend(model.gateways_for(proxy).diagnostics)
    return out
