"""Generates the committed test certificates once (goldens depend on their bytes).

Run only to replace them: `python tests/translate/certs/generate.py` — then refresh the
goldens. EC P-256 keys keep the files small; validity 2024-2124 keeps the goldens stable,
except `expired.example.com`, which expired in 2001 on purpose.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = Path(__file__).parent
VALID = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2124, 1, 1, tzinfo=UTC))
EXPIRED = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, tzinfo=UTC))


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


def _write(stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    (HERE / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (HERE / f"{stem}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def main() -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("example.com", "example Inc.")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1000)
          .not_valid_before(VALID[0]).not_valid_after(VALID[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write("example.com", ca, ca_key)
    leaves = [("httpbin.example.com", "httpbin organization", VALID, 1),
              ("helloworld.example.com", "helloworld organization", VALID, 2),
              ("client.example.com", "client organization", VALID, 3),
              ("expired.example.com", "expired organization", EXPIRED, 4)]
    for cn, org, (start, end), serial in leaves:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(ca_name)
                .public_key(key.public_key()).serial_number(serial)
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write(cn, cert, key)
    revoked = (x509.RevokedCertificateBuilder().serial_number(99)
               .revocation_date(VALID[0]).build())
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca_name)
           .last_update(VALID[0]).next_update(VALID[1]).add_revoked_certificate(revoked)
           .sign(ca_key, hashes.SHA256()))
    (HERE / "example.com.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    main()
