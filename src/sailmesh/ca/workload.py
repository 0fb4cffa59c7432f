"""Workload certificates: SPIFFE X.509-SVIDs signed by a CertificateAuthority.

Owns: the shape of a workload certificate (Istio's, which is an X.509-SVID), its TTL bounds
and its lifetime arithmetic. Must not know: Envoy or SDS (callers turn an IssuedCert into
the `default` and `ROOTCA` secrets), files, the clock (`now` is an argument).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from sailmesh.ca.authority import CertificateAuthority, random_serial, sign_certificate
from sailmesh.ca.errors import CAError
from sailmesh.ca.keys import KeyType, PrivateKey, generate_key, key_type_of, private_key_pem
from sailmesh.ca.spiffe import check_spiffe_id, spiffe_id
from sailmesh.ca.times import CLOCK_SKEW, x509_instant

__all__ = ["DEFAULT_TTL", "MAX_TTL", "IssuedCert", "issue_workload_cert", "spiffe_id"]

# Istio: workload certificates live 24h by default (DEFAULT_WORKLOAD_CERT_TTL) and istiod
# refuses requests above MAX_WORKLOAD_CERT_TTL, 90 days.
DEFAULT_TTL = timedelta(hours=24)
MAX_TTL = timedelta(days=90)

# X509-SVID §4.3: leaf SVIDs set digitalSignature and never keyCertSign/cRLSign; Istio's
# workload certificates also set keyEncipherment (for RSA key exchange), whatever the key type.
_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class IssuedCert:
    """A signed workload identity: what SDS serves as `default` (chain + key) and `ROOTCA`."""

    cert_chain_pem: bytes  # leaf, intermediates, root (see CertificateAuthority.served_chain_pem)
    key_pem: bytes = field(repr=False)  # PKCS#8, unencrypted
    root_pem: bytes  # the trust bundle
    serial: int
    not_before: datetime
    not_after: datetime
    spiffe_id: str

    @property
    def lifetime(self) -> timedelta:
        return self.not_after - self.not_before


def issue_workload_cert(
    ca: CertificateAuthority,
    *,
    spiffe_id: str,
    key_type: KeyType = "ecdsa-p256",
    ttl: timedelta = DEFAULT_TTL,
    now: datetime,
    dns_names: Iterable[str] = (),
    key: PrivateKey | None = None,
    rng: random.Random | None = None,
) -> IssuedCert:
    """Sign a workload certificate for `spiffe_id`, valid from `now - 1 min` for `ttl`.

    The lifetime is cut short if the CA's own path to the root expires first (Istio's CA does
    the same: a leaf never outlives its issuer). `key` replaces generating a `key_type` key
    (its type must match) and `rng` the serial's randomness; with both, equal arguments give
    byte-identical results.
    """
    check_spiffe_id(spiffe_id)
    if not timedelta(0) < ttl <= MAX_TTL:
        raise CAError(f"workload certificate TTL must be above 0 and at most {MAX_TTL.days} days, got {ttl}")
    if key is not None and key_type_of(key) != key_type:
        raise CAError(f"key is {key_type_of(key)} but key_type is {key_type!r}")
    start = x509_instant(now)
    if start >= ca.not_after:
        raise CAError(f"the CA expired at {ca.not_after.isoformat()}: {_subject(ca)} cannot sign any more")
    if start < ca.not_before:
        raise CAError(f"the CA is not valid before {ca.not_before.isoformat()}: check the clock or the CA")
    not_before = start - CLOCK_SKEW
    not_after = min(start + ttl, ca.not_after)

    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id)]
    for name in dns_names:
        if not name or not name.isascii():
            raise CAError(f"invalid DNS name {name!r}: use an ASCII (A-label) host name")
        sans.append(x509.DNSName(name))

    leaf_key = key if key is not None else generate_key(key_type)
    public_key = leaf_key.public_key()
    builder = (
        x509.CertificateBuilder()
        # Istio's workload certificates have an empty subject: the identity is the URI SAN.
        .subject_name(x509.Name([]))
        .issuer_name(ca.signing_cert.subject)
        .public_key(public_key)
        .serial_number(random_serial(rng or secrets.SystemRandom()))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # X509-SVID §2: exactly one URI SAN, the SPIFFE id. RFC 5280 §4.2.1.6: with an empty
        # subject the SAN extension MUST be critical.
        .add_extension(x509.SubjectAlternativeName(sans), critical=True)
        # X509-SVID §4.1: a leaf SVID sets cA false.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # X509-SVID §4.3: keyUsage MUST be critical.
        .add_extension(_LEAF_KEY_USAGE, critical=True)
        # X509-SVID §4.4: serverAuth and clientAuth, so one certificate serves both mTLS ends.
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        # RFC 5280 §4.2.1.2 (SHOULD for end entities) and §4.2.1.1 (MUST, not self-signed).
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(ca.signing_cert), critical=False)
    )
    leaf = sign_certificate(builder, ca.signing_key)
    return IssuedCert(
        cert_chain_pem=leaf.public_bytes(serialization.Encoding.PEM) + ca.served_chain_pem,
        key_pem=private_key_pem(leaf_key),
        root_pem=ca.root_pem,
        serial=leaf.serial_number,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        spiffe_id=spiffe_id,
    )


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """RFC 5280 §4.2.1.1: the AKI repeats the issuer's SKI when it has one."""
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _subject(ca: CertificateAuthority) -> str:
    return ca.signing_cert.subject.rfc4514_string() or "the CA"
