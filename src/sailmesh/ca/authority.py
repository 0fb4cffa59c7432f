"""The certificate authority: a signing certificate and key, its path to a root, the trust bundle.

Owns: creating Istio's self-signed root (like `istio-ca-secret`) and loading a plug-in CA from
the `cacerts` Secret's keys, with the checks that make a CA usable: the key matches the
certificate, the certificate may sign (RFC 5280 §4.2.1.3, §4.2.1.9), and it chains to a root
in the trust bundle. Must not know: files (see storage.py), workloads, Envoy, the clock (time
is an argument).

A CA never changes after construction; rotating a root means building a new one.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sailmesh.ca.errors import CAError
from sailmesh.ca.keys import (
    KeyType,
    PrivateKey,
    generate_key,
    key_type_of,
    load_signing_key,
    public_key_der,
    signature_hash,
)
from sailmesh.ca.spiffe import check_trust_domain
from sailmesh.ca.times import CLOCK_SKEW, x509_instant

# Istio's self-signed root lives 10 years (CITADEL_SELF_SIGNED_CA_CERT_TTL default).
ROOT_VALIDITY = timedelta(days=3650)
# A path longer than this is a loop or a mistake; Istio deployments use 1-3 levels.
_MAX_PATH = 8
# RFC 5280 §4.1.2.2: serials are positive and at most 20 octets; 159 random bits fit.
_SERIAL_BITS = 159


@dataclass(frozen=True)
class PemLayout:
    """Which keys of a Secret (or files of a directory) hold which PEM material."""

    cert: str
    key: str
    roots: str
    # Extra chain certificates; None when `cert` itself may carry the chain after the CA cert.
    chain: str | None = None


# Istio's plug-in CA Secret `cacerts` comes in two shapes; the first found wins, as in istiod.
ISTIO_LAYOUT = PemLayout(cert="ca-cert.pem", key="ca-key.pem", roots="root-cert.pem", chain="cert-chain.pem")
TLS_LAYOUT = PemLayout(cert="tls.crt", key="tls.key", roots="ca.crt")
PLUGIN_LAYOUTS = (ISTIO_LAYOUT, TLS_LAYOUT)


def random_serial(rng: random.Random) -> int:
    """A positive serial of at most 20 octets (RFC 5280 §4.1.2.2) drawn from `rng`."""
    return rng.getrandbits(_SERIAL_BITS) or 1


def sign_certificate(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    """Sign with the hash matching `key`. ECDSA signs deterministically (RFC 6979) so equal
    inputs give byte-identical certificates — the CA's outputs depend only on its arguments."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return builder.sign(key, signature_hash(key), ecdsa_deterministic=True)
    return builder.sign(key, signature_hash(key))


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA able to sign workload certificates.

    Contract: `signing_key` matches `signing_cert`; `intermediates` lead from the signing cert's
    issuer up to, but excluding, `root`; `root` is in `trust_bundle`. `self_signed` and
    `from_plugin` guarantee it; the constructor trusts its arguments.
    """

    signing_cert: x509.Certificate
    signing_key: PrivateKey = field(repr=False)
    intermediates: tuple[x509.Certificate, ...]
    root: x509.Certificate
    trust_bundle: tuple[x509.Certificate, ...]

    @classmethod
    def self_signed(
        cls,
        trust_domain: str,
        key_type: KeyType,
        now: datetime,
        validity: timedelta = ROOT_VALIDITY,
        *,
        key: PrivateKey | None = None,
        rng: random.Random | None = None,
    ) -> CertificateAuthority:
        """A new root CA, subject `O=<trust domain>` like Istio's self-signed root.

        `key` (optional) replaces key generation and `rng` the serial's randomness; with both
        and a fixed `now` the result is byte-for-byte reproducible.
        """
        check_trust_domain(trust_domain)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)])
        return cls.self_signed_as(name, key_type, now, validity, key=key, rng=rng)

    @classmethod
    def self_signed_as(
        cls,
        name: x509.Name,
        key_type: KeyType,
        now: datetime,
        validity: timedelta = ROOT_VALIDITY,
        *,
        key: PrivateKey | None = None,
        rng: random.Random | None = None,
    ) -> CertificateAuthority:
        """A new root CA with subject (and issuer) `name`; see `self_signed`."""
        if validity <= timedelta(0):
            raise CAError(f"root validity must be positive, got {validity}")
        start = x509_instant(now)
        signing_key = key if key is not None else generate_key(key_type)
        public_key = signing_key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(random_serial(rng or secrets.SystemRandom()))
            .not_valid_before(start - CLOCK_SKEW)
            .not_valid_after(start + validity)
            # RFC 5280 §4.2.1.9: a CA certificate carries basicConstraints cA=TRUE, critical.
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            # RFC 5280 §4.2.1.3: keyCertSign (and cRLSign) for a CA; SHOULD be critical.
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            # RFC 5280 §4.2.1.2: CA certificates MUST carry a subject key identifier.
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        cert = sign_certificate(builder, signing_key)
        return cls(cert, signing_key, (), cert, (cert,))

    @classmethod
    def from_plugin(
        cls, values: Mapping[str, bytes], *, layout: PemLayout | None = None
    ) -> CertificateAuthority:
        """A CA from Istio's plug-in Secret `cacerts` (its data, base64-decoded).

        Either `ca-cert.pem`, `ca-key.pem`, `root-cert.pem` and optional `cert-chain.pem`, or
        `tls.crt` (CA cert, optionally followed by its chain), `tls.key`, `ca.crt`. `layout`
        fixes other key names (storage.py uses it for its own files).
        """
        if layout is None:
            layout = next((lay for lay in PLUGIN_LAYOUTS if lay.cert in values), None)
            if layout is None:
                raise CAError(
                    "cacerts holds neither ca-cert.pem nor tls.crt: give ca-cert.pem, ca-key.pem, "
                    "root-cert.pem (and cert-chain.pem), or tls.crt, tls.key, ca.crt"
                )
        missing = [name for name in (layout.cert, layout.key, layout.roots) if name not in values]
        if missing:
            raise CAError(f"{layout.cert} is present but {', '.join(missing)} missing")

        cert, *rest = _load_certificates(values[layout.cert], layout.cert)
        key = load_signing_key(values[layout.key], layout.key)
        roots = tuple(_load_certificates(values[layout.roots], layout.roots))
        chain_name = layout.chain or layout.cert
        candidates = list(rest)
        if layout.chain is not None and layout.chain in values:
            candidates += _load_certificates(values[layout.chain], layout.chain)

        if public_key_der(key) != cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise CAError(f"{layout.key} does not match {layout.cert}: it is the key of another certificate")
        _require_ca(cert, layout.cert)
        intermediates, root = _path_to_root(cert, candidates, roots, layout.cert, layout.roots, chain_name)
        return cls(cert, key, intermediates, root, roots)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """What follows a leaf on the wire: the signing cert and intermediates, never the root."""
        if self.signing_cert == self.root:
            return ()
        return (self.signing_cert, *self.intermediates)

    @property
    def served_chain_pem(self) -> bytes:
        """What follows a leaf in the chain a workload serves, as Istio's CA answers: the
        signing cert and intermediates, then the root they chain to (a plug-in CA's
        `cert-chain.pem` ends with `root-cert.pem`); for a self-signed CA, the root alone."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM)
                        for c in (*self.chain, self.root))

    @property
    def root_pem(self) -> bytes:
        """The trust bundle as PEM: Istio's `root-cert.pem`, Envoy's SDS `ROOTCA`."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.trust_bundle)

    @property
    def key_type(self) -> str:
        """The signing key, e.g. "ecdsa-p256" or "rsa-2048"."""
        return key_type_of(self.signing_key)

    @property
    def not_after(self) -> datetime:
        """When the first certificate on the path to the root expires: nothing signed by this
        CA can be valid after it."""
        path = (self.signing_cert, *self.intermediates, self.root)
        return min(c.not_valid_after_utc for c in path)

    @property
    def not_before(self) -> datetime:
        path = (self.signing_cert, *self.intermediates, self.root)
        return max(c.not_valid_before_utc for c in path)


def _load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CAError(f"{source} holds no valid PEM certificate ({exc})") from exc


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "<empty subject>"


def _require_ca(cert: x509.Certificate, source: str) -> None:
    """RFC 5280 §6.1.4 (k), (n): an issuing certificate is a CA and may sign certificates."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise CAError(f"{source} ({_subject(cert)}) is not a CA certificate: basicConstraints cA is not true")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise CAError(f"{source} ({_subject(cert)}) may not sign certificates: keyUsage lacks keyCertSign")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _path_to_root(
    cert: x509.Certificate,
    candidates: list[x509.Certificate],
    roots: tuple[x509.Certificate, ...],
    cert_name: str,
    roots_name: str,
    chain_name: str,
) -> tuple[tuple[x509.Certificate, ...], x509.Certificate]:
    """(intermediates, root): certificates from `cert`'s issuer up to a root in `roots`."""
    path: list[x509.Certificate] = []
    current = cert
    for _ in range(_MAX_PATH):
        if current in roots:
            return tuple(path), current
        anchor = next((r for r in roots if _issued_by(current, r)), None)
        if anchor is not None:
            return tuple(path), anchor
        parent = next(
            (c for c in candidates if c != current and c not in path and _issued_by(current, c)), None
        )
        if parent is None:
            named = [c for c in (*roots, *candidates) if c.subject == current.issuer]
            why = (
                f"{_subject(current)} is not signed by the key of {current.issuer.rfc4514_string()}"
                if named
                else f"no certificate for its issuer {current.issuer.rfc4514_string()!r} "
                f"in {roots_name} or {chain_name}"
            )
            raise CAError(f"{cert_name} does not chain to {roots_name}: {why}")
        _require_ca(parent, f"intermediate in {chain_name}")
        path.append(parent)
        current = parent
    raise CAError(f"{cert_name} does not chain to {roots_name}: path longer than {_MAX_PATH}")
