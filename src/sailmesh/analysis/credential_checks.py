"""Analyzers of gateway credentials: credentialName → Secret in the gateway workload's namespace.

Owns: checks of pitfalls #9 (Secret in the Gateway's namespace instead of the gateway
workload's; `ns/name` form), #10 (wrong keys, corrupt PEM, key/cert mismatch, expired or
not-yet-valid certificate, one expiring within `EXPIRY_WARNING`, `-cacert` Secret without a
CA) and #11 (MUTUAL without any CA).
Must not know: output, clocks (`ctx.now`), the CLI.

Istio facts used (pilot credentials controller, see `translate.credentials`): the Secret is
read in the gateway *workload's* namespace; keys `tls.crt`/`tls.key` or `cert`/`key` (the
generic pair wins); the CA comes from Secret `<name>-cacert` when it exists, else from key
`ca.crt`/`cacert` of `<name>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.messages import Finding
from sailmesh.model.credentials import (
    CA_SUFFIX,
    Credential,
    check_ca,
    check_certificate,
    lookup_credential,
)
from sailmesh.resources.core import Secret
from sailmesh.resources.networking import Gateway, Server

# Modes whose credentialName is used to terminate TLS (passthrough modes ignore it, #17).
TERMINATING_MODES = frozenset({"SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"})
MUTUAL_MODES = frozenset({"MUTUAL", "OPTIONAL_MUTUAL"})
# Renew before this: long enough for a change window, as cert-manager's default renewBefore.
EXPIRY_WARNING = timedelta(days=30)


@dataclass(frozen=True)
class CredentialSite:
    """One terminating server's credentialName, as one gateway workload namespace reads it."""

    gateway: Gateway
    index: int
    server: Server
    workload_namespace: str
    cred: Credential  # resolved by the mesh's own rule (model.credentials)

    @property
    def credential(self) -> str:
        return self.cred.credential_name

    @property
    def field(self) -> str:
        return f"spec.servers[{self.index}].tls.credentialName"

    @property
    def cross_namespace(self) -> str | None:
        """The namespace of an `ns/name` credential when it is not the workload's."""
        return self.cred.other_namespace

    @property
    def secret_ref(self) -> str:
        return self.cred.ref


def credential_sites(ctx: AnalysisContext) -> Iterator[CredentialSite]:
    def lookup(ns: str, name: str) -> Secret | None:
        return ctx.snapshot.get(Secret, ns, name)

    for gw in ctx.snapshot.of_kind(Gateway):
        namespaces = sorted({w.namespace for w in ctx.workloads_of(gw)})
        for index, server in enumerate(gw.spec.servers):
            tls = server.tls
            if tls is None or not tls.credential_name or tls.mode not in TERMINATING_MODES:
                continue
            for ns in namespaces:
                yield CredentialSite(gw, index, server, ns,
                                     lookup_credential(tls.credential_name, ns, lookup))


def _readable(ctx: AnalysisContext) -> Iterator[tuple[CredentialSite, Secret]]:
    """Sites whose Secret exists where Istio looks (the other analyzers report the rest)."""
    for site in credential_sites(ctx):
        if site.cred.secret is not None:
            yield site, site.cred.secret


# --- analyzers -----------------------------------------------------------------------------


def secret_not_found(ctx: AnalysisContext) -> Iterator[Finding]:
    """#9: no Secret in the gateway workload's namespace; say when the Gateway's has it."""
    for site in credential_sites(ctx):
        if site.cross_namespace is not None or site.cred.secret is not None:
            continue
        gw = site.gateway
        name = site.cred.name
        message = (f"credentialName {site.credential}: {site.secret_ref} not found; gateway "
                   "credentials are read from the gateway workload's namespace "
                   f"{site.workload_namespace}.")
        if gw.namespace != site.workload_namespace and ctx.snapshot.get(
                Secret, gw.namespace, name) is not None:
            message += (f" Secret {gw.namespace}/{name} exists in the Gateway's namespace "
                        f"{gw.namespace}, but not in the gateway workload's namespace "
                        f"{site.workload_namespace}.")
        yield Finding(gw.ref, site.field, message)


def cross_namespace_credential(ctx: AnalysisContext) -> Iterator[Finding]:
    """#9: `ns/name` naming another namespace is refused by Istio on purpose."""
    for site in credential_sites(ctx):
        ns = site.cross_namespace
        if ns is not None:
            yield Finding(site.gateway.ref, site.field,
                          f"credentialName {site.credential} names namespace {ns}; Istio only "
                          "reads gateway credentials from the gateway workload's namespace "
                          f"{site.workload_namespace} and refuses other namespaces.")


def invalid_credential(ctx: AnalysisContext) -> Iterator[Finding]:
    """#10: wrong keys, PEM that does not parse, key not matching the certificate."""
    for site, _ in _readable(ctx):
        pair = site.cred.cert_and_key()
        if pair is None:
            found = ", ".join(sorted(site.cred.values())) or "none"
            yield Finding(site.gateway.ref, site.field,
                          f"{site.secret_ref} has no certificate and key (expected keys "
                          f"tls.crt + tls.key or cert + key; found: {found}).")
            continue
        for severity, problem in check_certificate(*pair, ctx.now):
            if severity == "error":
                yield Finding(site.gateway.ref, site.field, f"{site.secret_ref}: {problem}.")


def certificate_not_valid_now(ctx: AnalysisContext) -> Iterator[Finding]:
    """#10: the certificate is expired or not yet valid at `now`."""
    for site, _ in _readable(ctx):
        pair = site.cred.cert_and_key()
        if pair is None:
            continue
        for severity, problem in check_certificate(*pair, ctx.now):
            if severity != "error":
                yield Finding(site.gateway.ref, site.field, f"{site.secret_ref}: {problem}.")


def certificate_expires_soon(ctx: AnalysisContext) -> Iterator[Finding]:
    """#10 before it happens: a valid certificate that expires within `EXPIRY_WARNING`."""
    for site, _ in _readable(ctx):
        pair = site.cred.cert_and_key()
        if pair is None:
            continue
        try:
            leaf = x509.load_pem_x509_certificates(pair[0])[0]
        except ValueError:
            continue  # SM0103 reports it
        left = leaf.not_valid_after_utc - ctx.now
        if leaf.not_valid_before_utc <= ctx.now and timedelta(0) <= left < EXPIRY_WARNING:
            yield Finding(site.gateway.ref, site.field,
                          f"{site.secret_ref}: the certificate expires at "
                          f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, in {left.days} days.")


def mutual_without_ca(ctx: AnalysisContext) -> Iterator[Finding]:
    """#10/#11: MUTUAL needs a CA: a `-cacert` Secret with one, or ca.crt/cacert in the Secret.

    Envoy cannot verify clients without it; Istio leaves the listener warming forever.
    """
    for site, _ in _readable(ctx):
        mode = site.server.tls.mode if site.server.tls else ""
        if mode not in MUTUAL_MODES:
            continue
        cred = site.cred
        ca = cred.ca()
        if ca is None:
            if cred.ca_secret is not None:
                why = (f"{cred.ca_ref} exists and so is the only place Istio looks for the CA, "
                       f"but it has no key ca.crt or cacert (found: "
                       f"{', '.join(cred.ca_keys()) or 'none'})")
            else:
                why = (f"neither {site.secret_ref}{CA_SUFFIX} exists nor does {site.secret_ref} "
                       "have a key ca.crt or cacert")
            yield Finding(site.gateway.ref, site.field,
                          f"mode {mode} needs a CA to verify client certificates: {why}.")
            continue
        problem = check_ca(ca)
        if problem is not None:
            yield Finding(site.gateway.ref, site.field,
                          f"mode {mode}: the CA in {cred.ca_ref} {problem}.")
