"""The analyzer table: every code `sailctl analyze` can report, with its level and fix.

Owns: the stable codes (SM01xx: gateway side), their levels, the pitfall each catches (rows of
the user-pitfalls list), the Istio code of the same check where istioctl has one, and
`analyze`, which runs the table. Must not know: output, clocks, files, the store.

Codes are never reused or renumbered: users suppress them and CI greps for them.
"""

from __future__ import annotations

from collections.abc import Collection

from sailmesh.analysis import credential_checks as cred
from sailmesh.analysis import gateway_checks as gw
from sailmesh.analysis import route_checks as route
from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.messages import LEVEL_ORDER, Analyzer, Message

ANALYZERS: tuple[Analyzer, ...] = (
    Analyzer("SM0101", "Error", "credential-secret-not-found", "#9",
             "create the Secret in the gateway workload's namespace (e.g. `sailctl create "
             "secret tls NAME -n istio-system --cert=… --key=…`).",
             cred.secret_not_found, istio_code="IST0101"),
    Analyzer("SM0102", "Error", "credential-other-namespace", "#9",
             "copy the Secret into the gateway workload's namespace and set credentialName "
             "to its plain name.",
             cred.cross_namespace_credential),
    Analyzer("SM0103", "Error", "credential-invalid", "#10",
             "store the certificate chain under tls.crt and its private key under tls.key "
             "(PEM); check that the key belongs to the certificate.",
             cred.invalid_credential, istio_code="IST0161"),
    Analyzer("SM0104", "Error", "certificate-not-valid-now", "#10",
             "issue a certificate valid now and update the Secret.",
             cred.certificate_not_valid_now, istio_code="IST0161"),
    Analyzer("SM0105", "Error", "mutual-without-ca", "#11",
             "add the client CA as key ca.crt to the Secret, or to a Secret NAME-cacert in "
             "the same namespace.",
             cred.mutual_without_ca),
    Analyzer("SM0106", "Info", "sni-only-servers", "#13",
             "add a server with hosts: [\"*\"] for clients without SNI, or make clients send "
             "the host name (curl --resolve HOST:PORT:IP https://HOST/).",
             gw.sni_only_servers),
    Analyzer("SM0107", "Info", "shared-credential", "#14",
             "put the hosts that share a certificate on one server, or give each server its "
             "own certificate.",
             gw.shared_credential, istio_code="IST0138"),
    Analyzer("SM0108", "Error", "overlapping-gateway-hosts", "#15",
             "serve each host on a port from one Gateway only (merge the servers, or use "
             "distinct hosts).",
             gw.overlapping_hosts, istio_code="IST0145"),
    Analyzer("SM0109", "Error", "route-kind-mismatch", "#16",
             "use http routes for terminating (SIMPLE/MUTUAL) servers and tls routes "
             "(match sniHosts) for PASSTHROUGH servers.",
             route.route_kind_mismatch),
    Analyzer("SM0110", "Warning", "tls-protocol-without-mode", "#17",
             "set tls.mode: SIMPLE (or MUTUAL) to terminate TLS, or remove the credential "
             "for passthrough.",
             gw.tls_without_mode),
    Analyzer("SM0111", "Warning", "weak-min-tls-without-ciphers", "#19",
             "list cipherSuites that TLS 1.0/1.1 clients support, e.g. "
             "ECDHE-RSA-AES128-SHA.",
             gw.weak_min_tls),
    Analyzer("SM0112", "Info", "mesh-mtls-not-for-gateways", "#19",
             "set gateway TLS in each Gateway server's tls (or meshConfig.tlsDefaults).",
             gw.mesh_mtls_not_gateways),
    Analyzer("SM0113", "Warning", "several-virtual-services-per-host", "#25",
             "keep the routes of one host in one VirtualService, or order them knowingly "
             "(creation order decides).",
             route.merged_virtual_services),
    Analyzer("SM0114", "Error", "virtual-service-gateway-not-found", "",
             "name an existing Gateway as `ns/name` (a bare name means the VirtualService's "
             "namespace).",
             route.gateway_not_found, istio_code="IST0101"),
    Analyzer("SM0115", "Error", "destination-host-not-found", "",
             "route to an existing Service (`name.namespace.svc.cluster.local`) or declare "
             "the host with a ServiceEntry.",
             route.unknown_destination, istio_code="IST0101"),
    Analyzer("SM0116", "Error", "gateway-selector-without-workload", "",
             "set spec.selector to the labels of a gateway workload, e.g. istio: "
             "ingressgateway.",
             gw.selector_without_workload, istio_code="IST0101"),
)

BY_CODE: dict[str, Analyzer] = {a.code: a for a in ANALYZERS}


def analyze(ctx: AnalysisContext, namespaces: Collection[str] | None = None) -> list[Message]:
    """Every message of every analyzer, for resources in `namespaces` (None: all).

    Sorted by level (errors first), then resource, then code; duplicates removed.
    """
    messages = [m for a in ANALYZERS for m in a.run(ctx)
                if namespaces is None or m.namespace in namespaces]
    unique = list(dict.fromkeys(messages))
    return sorted(unique, key=lambda m: (LEVEL_ORDER[m.level], m.ref, m.code, m.field or ""))
