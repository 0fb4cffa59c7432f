"""The analyzer table: every code `sailctl analyze` can report, with its level and fix.

Owns: the stable codes (SM0101 to SM0116 gateway side, SM0117 on: mesh, egress and the checks
istioctl also has), their levels, the pitfall each catches (rows of
the user-pitfalls list), the Istio code of the same check where istioctl has one, and
`analyze`, which runs the table. Must not know: output, clocks, files, the store.

Codes are never reused or renumbered: users suppress them and CI greps for them.
"""

from __future__ import annotations

from collections.abc import Collection

from sailmesh.analysis import credential_checks as cred
from sailmesh.analysis import destination_checks as dest
from sailmesh.analysis import egress_checks as egress
from sailmesh.analysis import gateway_checks as gw
from sailmesh.analysis import input_checks as inputs
from sailmesh.analysis import kiali_checks as kiali
from sailmesh.analysis import mesh_checks as mesh
from sailmesh.analysis import route_checks as route
from sailmesh.analysis import router_checks as routes
from sailmesh.analysis import sidecar_checks as sidecars
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
    Analyzer("SM0107", "Warning", "shared-credential", "#14",
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
             "route to an existing Service (`name.namespace.svc.cluster.local`) and port, "
             "declare the host with a ServiceEntry, or export it to this namespace.",
             dest.unknown_destination, istio_code="IST0101"),
    Analyzer("SM0116", "Error", "gateway-selector-without-workload", "",
             "set spec.selector to the labels of a gateway workload, e.g. istio: "
             "ingressgateway.",
             gw.selector_without_workload, istio_code="IST0101"),
    # --- mesh: DestinationRule against PeerAuthentication and sidecars ---
    Analyzer("SM0117", "Error", "disable-towards-strict", "#1",
             "remove tls from the DestinationRule (auto mTLS then sends mTLS), set it to "
             "ISTIO_MUTUAL, or relax the server's PeerAuthentication to PERMISSIVE.",
             mesh.disable_to_strict),
    Analyzer("SM0118", "Error", "istio-mutual-without-sidecar", "#2",
             "inject a sidecar into the destination (namespace label istio-injection=enabled, "
             "then restart it), or remove tls from the rule so auto mTLS sends plaintext there.",
             mesh.istio_mutual_without_sidecar),
    Analyzer("SM0119", "Warning", "destination-rule-never-applies", "#3",
             "move the rule to the service's namespace (or the client's), or merge it into "
             "the rule that wins: rules of different namespaces are not merged, and a later "
             "rule for the same host adds only subsets with new names.",
             mesh.never_applied),
    Analyzer("SM0120", "Error", "istio-mutual-towards-disable", "#4",
             "remove tls from the DestinationRule (auto mTLS sends plaintext to DISABLE "
             "ports) or stop disabling mTLS on the server.",
             mesh.istio_mutual_to_disabled),
    Analyzer("SM0121", "Warning", "port-level-mtls-not-container-port", "#5",
             "key portLevelMtls by the container port (the Service's targetPort).",
             mesh.port_level_service_port),
    Analyzer("SM0122", "Error", "port-level-mtls-without-selector", "#5",
             "add a selector.matchLabels for the workload, or set spec.mtls for the whole "
             "namespace instead.",
             mesh.port_level_without_selector),
    # --- egress: ServiceEntry and TLS origination ---
    Analyzer("SM0123", "Warning", "https-to-http-port", "#20",
             "declare the port protocol HTTPS (or TLS), or make the application send plain "
             "HTTP and originate TLS with a DestinationRule.",
             egress.https_to_http_port),
    Analyzer("SM0124", "Warning", "double-tls", "#21",
             "let the application speak HTTP to a port declared HTTP (e.g. 80, targetPort "
             "443) and keep tls SIMPLE, or keep the HTTPS port and remove tls from the rule.",
             egress.double_tls),
    Analyzer("SM0125", "Warning", "origination-without-sni", "#22",
             "set tls.sni to the external host in the DestinationRule.",
             egress.origination_without_sni),
    Analyzer("SM0126", "Error", "destination-rule-credential", "#23",
             "create the Secret (with ca.crt, and tls.crt/tls.key for MUTUAL) in the "
             "namespace of the proxy that originates TLS (istio-system for the egress "
             "gateway).",
             egress.destination_rule_credential),
    Analyzer("SM0127", "Warning", "service-entry-port-protocols-clash", "#24",
             "give the ServiceEntries addresses, or use distinct port numbers per protocol.",
             egress.shared_port_protocols),
    Analyzer("SM0128", "Warning", "certificate-expires-soon", "#10",
             "renew the certificate and update the Secret; the gateway serves the new one "
             "without a restart.",
             cred.certificate_expires_soon),
    # --- checks istioctl has too: Istio's code is printed first ---
    Analyzer("SM0129", "Warning", "no-server-verification", "",
             "set caCertificates (or credentialName with a CA) so the server's identity is "
             "verified.",
             egress.no_ca_destination_level, istio_code="IST0128"),
    Analyzer("SM0130", "Warning", "no-server-verification-port-level", "",
             "set caCertificates (or credentialName with a CA) in that portLevelSettings "
             "entry.",
             egress.no_ca_port_level, istio_code="IST0129"),
    Analyzer("SM0131", "Error", "conflicting-mesh-virtual-service-hosts", "#25",
             "merge the VirtualServices of one host into one resource, or limit them with "
             "exportTo.",
             route.conflicting_mesh_hosts, istio_code="IST0109"),
    Analyzer("SM0132", "Warning", "conflicting-service-entry-protocols", "#24",
             "use one protocol for the port in every ServiceEntry, or put the host in one "
             "ServiceEntry.",
             egress.conflicting_entry_protocols, istio_code="IST0177"),
    Analyzer("SM0133", "Warning", "virtual-service-host-not-in-gateway", "",
             "add the host to a server of the Gateway, or remove it from the VirtualService.",
             route.host_not_in_gateway, istio_code="IST0132"),
    Analyzer("SM0134", "Warning", "gateway-port-not-on-service", "",
             "use a port of the gateway Service (e.g. 80 or 443, or their target ports 8080 "
             "and 8443), or add the port to the Service.",
             gw.port_not_on_service, istio_code="IST0162"),
    Analyzer("SM0135", "Error", "mesh-route-to-gateway-fails", "",
             "give the gateway's subset tls.mode ISTIO_MUTUAL with sni: <the host> in a "
             "DestinationRule for the gateway Service (as Istio's egress tasks do), and make "
             "a Gateway server carry that host on that port.",
             egress.mesh_route_to_gateway_fails),
    Analyzer("SM0145", "Error", "route-to-gateway-fails", "",
             "for reencrypt Routes give the gateway a server with hosts: [\"*\"] on the "
             "Route's port and set destinationCACertificate to the CA of its certificate; "
             "see `sailctl x tls-check route/NAME`.",
             routes.route_to_gateway_fails),
    Analyzer("SM0146", "Error", "gateway-server-file-missing", "",
             "create the Secret the gateway mounts there (e.g. `sailctl create -n istio-system "
             "secret tls istio-ingressgateway-certs --cert=… --key=…`), or use credentialName.",
             routes.gateway_server_file_missing),
    Analyzer("SM0147", "Warning", "route-annotation-ignored", "",
             "write the value as the router reads it (see docs/openshift-router.md); until "
             "then the router uses its default, or clips the value as the message says.",
             routes.route_annotation_ignored),
    Analyzer("SM0150", "Error", "schema-invalid", "",
             "correct the field named (the rest of the input is analyzed without it; "
             "`sailctl apply` refuses the whole input until it is corrected).",
             inputs.schema_problems, istio_code="IST0106"),
    Analyzer("SM0151", "Error", "destination-port-required", "",
             "name the port in the destination (port: {number: N}).",
             dest.port_required, istio_code="IST0112"),
    Analyzer("SM0152", "Warning", "ingress-route-without-subset", "",
             "give the gateway's destination the subset the host's VirtualService would "
             "choose, or route by subset in this VirtualService too.",
             dest.ingress_route_without_subset, istio_code="IST0140"),
    Analyzer("SM0153", "Warning", "internal-gateway-reference", "",
             "bind to a Gateway resource of yours, or route through the Kubernetes Gateway "
             "with an HTTPRoute.",
             route.internal_gateway_reference, istio_code="IST0165"),
    Analyzer("SM0154", "Error", "destination-subset-not-found", "",
             "define the subset in the DestinationRule for the host, or route without it.",
             dest.subset_not_found, istio_code="IST0101"),
    # --- Kiali's DestinationRule and PeerAuthentication validations: Kiali's code follows ---
    Analyzer("SM0160", "Warning", "destination-rules-same-subset", "#3",
             "keep one DestinationRule per host and subset (merge them, or give the subsets "
             "distinct names).",
             kiali.multiple_rules_for_subset, kiali_code="KIA0201"),
    Analyzer("SM0161", "Warning", "destination-rule-host-not-found", "",
             "point the rule at an existing Service or ServiceEntry host (short names are "
             "completed in the rule's namespace).",
             kiali.host_not_found, kiali_code="KIA0202"),
    Analyzer("SM0162", "Warning", "subset-selects-no-workload", "",
             "give the subset labels that the Service's pods (or the entry's endpoints) carry.",
             kiali.subset_without_workload, kiali_code="KIA0203"),
    Analyzer("SM0163", "Warning", "rule-hides-wide-mtls", "#3",
             "add tls: {mode: ISTIO_MUTUAL} to this rule, or remove its tls-less trafficPolicy "
             "so the wider rule applies.",
             kiali.hides_wide_mtls, kiali_code="KIA0204"),
    Analyzer("SM0164", "Warning", "mesh-mtls-rule-without-policy", "#1",
             "add a PeerAuthentication without selector in the root namespace with mtls mode "
             "STRICT or PERMISSIVE, or turn auto mTLS back on.",
             kiali.mesh_rule_without_policy, kiali_code="KIA0205"),
    Analyzer("SM0165", "Warning", "namespace-mtls-rule-without-policy", "#1",
             "add a PeerAuthentication without selector in the namespace (or the root one) "
             "with mtls mode STRICT or PERMISSIVE, or turn auto mTLS back on.",
             kiali.namespace_rule_without_policy, kiali_code="KIA0206"),
    Analyzer("SM0166", "Error", "namespace-disable-towards-strict", "#1",
             "make the namespace's PeerAuthentication PERMISSIVE, or remove the DISABLE rule.",
             kiali.namespace_disable_towards_strict, kiali_code="KIA0207"),
    Analyzer("SM0167", "Error", "disable-towards-mesh-strict", "#1",
             "make the mesh-wide PeerAuthentication PERMISSIVE, or remove the DISABLE rule.",
             kiali.disable_towards_mesh_strict, kiali_code="KIA0208"),
    Analyzer("SM0168", "Error", "strict-without-mtls-rule", "#1",
             "turn auto mTLS on (meshConfig.enableAutoMtls), or add a DestinationRule for "
             "*.<namespace>.svc.cluster.local with tls mode ISTIO_MUTUAL.",
             kiali.strict_without_rule, kiali_code="KIA0501"),
    Analyzer("SM0169", "Error", "namespace-disable-with-mtls-rule", "#4",
             "add a DestinationRule for *.<namespace>.svc.cluster.local with tls mode DISABLE, "
             "or stop disabling mTLS in the namespace.",
             kiali.namespace_disable_with_mtls_rule, kiali_code="KIA0505"),
    Analyzer("SM0170", "Error", "mesh-disable-with-mtls-rule", "#4",
             "set the mesh-wide DestinationRule (*.local) to DISABLE, or stop disabling mTLS "
             "mesh-wide.",
             kiali.mesh_disable_with_mtls_rule, kiali_code="KIA0506"),
    Analyzer("SM0171", "Error", "credential-not-authorized", "#23",
             "let the pods' service account list Secrets in their namespace: `kubectl create "
             "role NAME --verb=list --resource=secrets -n NS` and `kubectl create rolebinding "
             "NAME --role=NAME --serviceaccount=NS:SA -n NS`.",
             egress.sidecar_credential_not_authorized),
    # --- Sidecar resources ---
    Analyzer("SM0172", "Error", "multiple-sidecars-without-selector", "",
             "keep one Sidecar without workloadSelector per namespace (merge their egress "
             "hosts), or give the others a workloadSelector.",
             sidecars.multiple_defaults, istio_code="IST0111"),
    Analyzer("SM0173", "Error", "conflicting-sidecar-selectors", "",
             "make the selectors of the Sidecars of one namespace pick disjoint pods.",
             sidecars.conflicting_selectors, istio_code="IST0110"),
    Analyzer("SM0174", "Error", "sidecar-selector-not-found", "",
             "set workloadSelector.labels to the labels of pods in the Sidecar's namespace, "
             "or remove the selector to make it the namespace's default.",
             sidecars.selector_not_found, istio_code="IST0101"),
    Analyzer("SM0175", "Warning", "sidecar-egress-host-not-found", "",
             "name a host that a Service, ServiceEntry or VirtualService of that namespace "
             "defines (`ns/name.ns.svc.cluster.local`, `ns/*`), or remove it.",
             sidecars.egress_host_imports_nothing, kiali_code="KIA1004"),
)

BY_CODE: dict[str, Analyzer] = {a.code: a for a in ANALYZERS}


def analyze(ctx: AnalysisContext, namespaces: Collection[str] | None = None) -> list[Message]:
    """Every message of every analyzer, for resources in `namespaces` (None: all); messages
    without a namespace (cluster-scoped resources, unreadable files) are always kept, as
    istioctl keeps them.

    Sorted by level (errors first), then resource, then code; duplicates removed.
    """
    messages = [m for a in ANALYZERS for m in a.run(ctx)
                if namespaces is None or not m.namespace or m.namespace in namespaces]
    unique = list(dict.fromkeys(messages))
    return sorted(unique, key=lambda m: (LEVEL_ORDER[m.level], m.ref, m.code, m.field or ""))
