"""One push: every proxy's complete resources, the diagnostics, and each node's status.

Owns: turning a snapshot, the live pods and the mesh identities into a `Push`; keeping one
proxy's failure from touching the others. Must not know: how resources reach Envoy (xDS),
how pods run, the store.

Theory of operation:
1. The model (indexes over the snapshot) is built once per push; every proxy's
   translation reads it.
2. A proxy whose translation raises gets no new resources: its node is `kept` (the daemon
   leaves its last good config in place) and an error diagnostic names the proxy, the
   exception and the resources that bind to it (Gateways selecting a gateway proxy).
   Every other proxy gets its config as usual.
3. Identity secrets (`default`, `ROOTCA`) join each proxy's resources; without them the
   proxy is `no-identity`: its mTLS listeners and clusters stay unready (fail closed) and
   a diagnostic says why.
4. The Push is a value: the daemon publishes all of its nodes or none.
5. With a `TranslationMemo` (kept by the caller across pushes), a proxy that a change
   cannot reach keeps its last translation instead of being translated again, and a proxy
   whose certificate is the same keeps the very same identity secrets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from google.protobuf.message import Message

from sailmesh.ca import CAError, IssuedCert
from sailmesh.control.memo import TranslationMemo
from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.mesh import MeshModel
from sailmesh.model.proxy import Proxy
from sailmesh.model.workloads import selector_matches
from sailmesh.resources.networking import Gateway
from sailmesh.translate import ProxyConfig, translate_proxy, type_urls
from sailmesh.translate.identity import identity_secrets

# fresh: new resources to publish; kept: translation failed, the last good config stays;
# no-identity: resources without a workload certificate (mTLS stays closed).
NodeState = Literal["fresh", "kept", "no-identity"]
Resources = Mapping[str, Mapping[str, Message]]


class Identities(Protocol):
    """Issues (or returns the still-valid) certificate of a pod's workload identity."""

    def certificate(self, pod: tuple[str, str], service_account: str,
                    now: datetime) -> IssuedCert: ...


@dataclass(frozen=True)
class ProxyPod:
    """A running pod with a proxy, as the runtime reports it."""

    node_id: str
    proxy: Proxy
    service_account: str


@dataclass(frozen=True)
class NodePush:
    proxy: Proxy
    state: NodeState
    # Empty when `kept`: publish nothing for this node.
    resources: Resources = field(default_factory=dict)


@dataclass(frozen=True)
class Push:
    version: str
    nodes: Mapping[str, NodePush]
    diagnostics: tuple[Diagnostic, ...]

    def kept(self) -> list[str]:
        return sorted(n for n, p in self.nodes.items() if p.state == "kept")


def plan_push(model: MeshModel, pods: Sequence[ProxyPod], identities: Identities, *,
              now: datetime, memo: TranslationMemo | None = None) -> Push:
    diagnostics: list[Diagnostic] = list(model.diagnostics)
    nodes: dict[str, NodePush] = {}
    translated: dict[str, tuple[Proxy, ProxyConfig]] = {}
    if memo is not None:
        memo.start(model)
    for pod in pods:
        proxy = pod.proxy
        cfg = memo.lookup(pod.node_id, proxy) if memo is not None else None
        try:
            if cfg is None:
                cfg = translate_proxy(model, proxy, now=now)
        except Exception as exc:  # one proxy's failure must not stop the others
            diagnostics.append(_translation_failed(model, proxy, exc))
            nodes[pod.node_id] = NodePush(proxy, "kept")
            continue
        translated[pod.node_id] = (proxy, cfg)
        diagnostics += cfg.diagnostics
        resources = cfg.by_type_url()
        state: NodeState = "fresh"
        try:
            cert = identities.certificate((proxy.namespace, proxy.name), pod.service_account, now)
            secrets = (memo.identity_secrets(pod.node_id, cert) if memo is not None else
                       identity_secrets(cert.cert_chain_pem, cert.key_pem, cert.root_pem))
            resources[type_urls.SECRET] = {**resources[type_urls.SECRET], **secrets}
        except CAError as exc:
            diagnostics.append(Diagnostic("error", f"Pod {proxy.namespace}/{proxy.name}", None,
                                          f"no workload certificate: {exc}",
                                          codes.WORKLOAD_CERT_FAILED))
            state = "no-identity"
        nodes[pod.node_id] = NodePush(proxy, state, resources)
    if memo is not None:
        memo.keep(translated)
    return Push(version=model.snapshot.version, nodes=nodes,
                diagnostics=tuple(dict.fromkeys(diagnostics)))


def _translation_failed(model: MeshModel, proxy: Proxy, exc: Exception) -> Diagnostic:
    """Names the proxy, what went wrong, and the resources that shape its config."""
    involved = [f"Gateway {gw.namespace}/{gw.name}" for gw in model.snapshot.of_kind(Gateway)
                if selector_matches(gw.spec.selector, proxy.labels)] if proxy.kind == "router" else []
    among = f" (configured by {', '.join(involved)})" if involved else ""
    return Diagnostic(
        "error", proxy.ref, None,
        f"its configuration could not be built{among}: {type(exc).__name__}: {exc}; "
        "it keeps its last good configuration", codes.PROXY_NOT_TRANSLATED)
