"""The router's own certificates, as an OpenShift cluster has them: the ingress operator's
router CA signing a wildcard certificate for the apps domain (the default certificate of
edge and reencrypt Routes without one of their own), and the service CA that signs
serving certificates of Services (what reencrypt Routes trust when they name no
destinationCACertificate), and its signing of those certificates.

Owns: creating and keeping these in a directory (keys 0600), renewing the wildcard when
the apps domain changes. Clock passed in. Must not know: HAProxy, Routes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sailmesh.model.service_ca import SIGNER_NAME

CA_LIFETIME = dt.timedelta(days=730)  # the ingress operator's router CA: two years
LEAF_LIFETIME = dt.timedelta(days=365)
SERVING_LIFETIME = dt.timedelta(days=730)  # the service-ca operator's serving certificates
# OpenShift's server-signing arc (Red Hat 1.3.6.1.4.1.2312.17, .100 server signing,
# .2 service, .1 the Service's UID).
SERVICE_UID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.2312.17.100.2.1")


@dataclass(frozen=True)
class ServingCertificate:
    chain_pem: bytes  # the certificate, then the CA
    key_pem: bytes
    not_after: dt.datetime


@dataclass(frozen=True)
class RouterPKI:
    router_ca: Path  # PEM of the router CA (what `sailctl router ca` prints)
    default_certificate: Path  # wildcard certificate + key + CA, as HAProxy's `crt` wants
    service_ca: Path  # PEM of the service CA


def ensure_pki(directory: Path, apps_domain: str, now: dt.datetime) -> RouterPKI:
    """The router CA, the service CA and a wildcard certificate for `*.<apps_domain>`,
    created on first use and kept; the wildcard is re-issued when the domain changes."""
    with _exclusive(directory):
        return _ensure_pki(directory, apps_domain, now)


def _ensure_pki(directory: Path, apps_domain: str, now: dt.datetime) -> RouterPKI:
    ca_cert, ca_key = _load_or_create_ca(directory, "router-ca", "ingress-operator", now)
    _load_or_create_ca(directory, "service-ca", SIGNER_NAME, now)
    wildcard = directory / "default.pem"
    if _wildcard_domain(wildcard) != apps_domain:
        key = ec.generate_private_key(ec.SECP256R1())
        name = f"*.{apps_domain}"
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + LEAF_LIFETIME)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(wildcard, cert.public_bytes(serialization.Encoding.PEM) + _key_pem(key)
               + ca_cert.public_bytes(serialization.Encoding.PEM), 0o600)
    return RouterPKI(directory / "router-ca.crt", wildcard, directory / "service-ca.crt")


class ServiceCA:
    """The service CA as the service-ca operator uses it: it signs serving certificates
    for `<svc>.<ns>.svc` (implements model.service_ca.Signer). Its key stays in the
    router's PKI directory (0600); only certificates and keys it issues leave it."""

    def __init__(self, directory: Path, now: dt.datetime) -> None:
        with _exclusive(directory):
            self._cert, self._key = _load_or_create_ca(directory, "service-ca", SIGNER_NAME,
                                                       now)
        self.name = self._cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        self.key_id = self._cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest
        self.bundle = self._cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, dns_names: Sequence[str], service_uid: str,
              now: dt.datetime) -> ServingCertificate:
        """A server certificate for `dns_names` (the first is the subject's CN, as
        library-go's MakeServerCert does), valid two years, carrying the Service's UID
        in OpenShift's extension; the chain is the certificate then the CA, as the
        operator writes tls.crt."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(seconds=1))
            .not_valid_after(now + SERVING_LIFETIME)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier(self.key_id, None, None), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.UnrecognizedExtension(SERVICE_UID_OID, _printable(service_uid)),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.bundle.encode()
        return ServingCertificate(chain, _key_pem(key), cert.not_valid_after_utc)


def _printable(text: str) -> bytes:
    """DER of an ASN.1 PrintableString (a UUID's characters all are printable)."""
    raw = text.encode("ascii")
    if len(raw) > 127:
        raise ValueError("service UID too long for a short-form DER length")
    return bytes([0x13, len(raw)]) + raw


def _load_or_create_ca(directory: Path, stem: str, common_name: str,
                       now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    # OpenShift names its signers `<name>@<unix time>`.
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                            f"{common_name}@{int(now.timestamp())}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _wildcard_domain(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return None
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    wildcard = next(iter(names.get_values_for_type(x509.DNSName)), "")
    return wildcard[2:] if wildcard.startswith("*.") else None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """One creator at a time: the daemon and `sailctl` may both reach for the PKI first
    (a key and a certificate from two different creators must never end up paired)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


__all__ = ["RouterPKI", "ServiceCA", "ServingCertificate", "ensure_pki"]
