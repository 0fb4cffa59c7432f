"""The offline internet's certificate authority: public-looking server certificates for the
stand-ins of external sites (docs/egress.md, "Public certificates").

Tutorials reach `https://edition.cnn.com` from a pod without `--cacert`, and a DestinationRule
with `tls.mode: SIMPLE` and no `caCertificates` checks the site against the system roots. No
real public CA signs a certificate for a stand-in, so the mesh keeps a root of its own that
plays that part: every pod's system trust store holds it (the runtime mounts the bundle that
storage.py writes), and it signs only server certificates for the host names of stand-in
Services. It is never a mesh identity: workload certificates come from the mesh CA.

Owns: the root's subject and shape, the shape of a site certificate (as a public CA issues
one: DNS SANs, serverAuth, 90 days). Must not know: files, Services, Envoy, the clock.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sailmesh.ca.authority import CertificateAuthority, random_serial, sign_certificate
from sailmesh.ca.errors import CAError
from sailmesh.ca.keys import generate_key, private_key_pem
from sailmesh.ca.times import CLOCK_SKEW, x509_instant

WEB_CA_DIR = "web-ca"
WEB_ROOT_SUBJECT = x509.Name([
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sailmesh offline internet"),
    x509.NameAttribute(NameOID.COMMON_NAME, "sailmesh offline internet root CA"),
])
# CA/Browser Forum baseline: public server certificates live at most 398 days; Let's
# Encrypt issues 90-day ones and renews after 60, which is what stand-ins get.
SITE_VALIDITY = timedelta(days=90)
SITE_RENEW_BEFORE = timedelta(days=30)


def new_web_root(now: datetime) -> CertificateAuthority:
    return CertificateAuthority.self_signed_as(WEB_ROOT_SUBJECT, "ecdsa-p256", now)


@dataclass(frozen=True)
class SiteCert:
    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    hosts: tuple[str, ...]
    not_after: datetime


def issue_site_cert(ca: CertificateAuthority, hosts: Sequence[str], now: datetime, *,
                    rng: random.Random | None = None) -> SiteCert:
    """A server certificate for `hosts` (DNS names; `*.example.com` allowed), valid from
    `now - 1 min` for SITE_VALIDITY (cut short by the root's own end)."""
    if not hosts:
        raise CAError("a site certificate needs at least one host name")
    for host in hosts:
        if not host or not host.isascii() or " " in host:
            raise CAError(f"invalid host name {host!r}: use an ASCII (A-label) DNS name")
    start = x509_instant(now)
    if start >= ca.not_after:
        raise CAError(f"the offline internet's root expired at {ca.not_after.isoformat()}")
    key = generate_key("ecdsa-p256")
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca.signing_cert.subject)
        .public_key(public_key)
        .serial_number(random_serial(rng or secrets.SystemRandom()))
        .not_valid_before(start - CLOCK_SKEW)
        .not_valid_after(min(start + SITE_VALIDITY, ca.not_after))
        # RFC 6125 §6.4.4 / CA/B baseline §7.1.2.7: the names clients check are DNS SANs.
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca.signing_cert.public_key()), critical=False)  # type: ignore[arg-type]
    )
    cert = sign_certificate(builder, ca.signing_key)
    return SiteCert(cert_pem=cert.public_bytes(serialization.Encoding.PEM),
                    key_pem=private_key_pem(key), hosts=tuple(hosts),
                    not_after=cert.not_valid_after_utc)


def needs_new_site_cert(cert_pem: bytes | None, hosts: Sequence[str], root: x509.Certificate,
                        now: datetime) -> bool:
    """True when `cert_pem` is missing, unreadable, for other names, from another root, or
    within SITE_RENEW_BEFORE of its end."""
    if not cert_pem:
        return True
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return True
    return (sorted(sans.get_values_for_type(x509.DNSName)) != sorted(hosts)
            or cert.not_valid_after_utc - x509_instant(now) < SITE_RENEW_BEFORE)


__all__ = ["SITE_VALIDITY", "WEB_CA_DIR", "WEB_ROOT_SUBJECT", "SiteCert", "issue_site_cert",
           "needs_new_site_cert", "new_web_root"]
