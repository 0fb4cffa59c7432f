"""Test PKI for the CA tests: a fixed clock, plug-in hierarchies
(root → intermediate(s)) built the way `openssl`/cert-manager users build Istio's `cacerts`,
and the two independent verifiers (pyca/cryptography's webpki verifier and `openssl verify`)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerifiedClient

from sailmesh.ca.authority import sign_certificate
from sailmesh.ca.keys import PrivateKey, generate_key, private_key_pem

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
# Verification happens a little after issuance, inside every certificate's lifetime.
CHECK_AT = NOW + timedelta(hours=1)
KEY_TYPES = ("ecdsa-p256", "rsa-2048")


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ca_cert(
    subject: str, key: PrivateKey, issuer: x509.Certificate | None, issuer_key: PrivateKey
) -> x509.Certificate:
    """A CA certificate as an operator would make for Istio's plug-in CA."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Istio"),
            x509.NameAttribute(NameOID.COMMON_NAME, subject),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    return sign_certificate(builder, issuer_key)


class Hierarchy:
    """root → intermediates[0] → … → intermediates[-1] (the signing CA), with keys."""

    def __init__(self, depth: int, key_type: str = "ecdsa-p256", root_name: str = "Root CA") -> None:
        self.root_key = generate_key(key_type)  # type: ignore[arg-type]
        self.root = ca_cert(root_name, self.root_key, None, self.root_key)
        self.keys: list[PrivateKey] = []
        self.certs: list[x509.Certificate] = []
        issuer, issuer_key = self.root, self.root_key
        for level in range(depth):
            key = generate_key(key_type)  # type: ignore[arg-type]
            cert = ca_cert(f"Intermediate CA {level + 1}", key, issuer, issuer_key)
            self.keys.append(key)
            self.certs.append(cert)
            issuer, issuer_key = cert, key

    @property
    def signing(self) -> tuple[x509.Certificate, PrivateKey]:
        return self.certs[-1], self.keys[-1]

    def cacerts(self) -> dict[str, bytes]:
        """Istio's documented layout: cert-chain.pem = CA cert, intermediates, root."""
        cert, key = self.signing
        return {
            "ca-cert.pem": pem(cert),
            "ca-key.pem": private_key_pem(key),
            "root-cert.pem": pem(self.root),
            "cert-chain.pem": b"".join(pem(c) for c in reversed(self.certs)) + pem(self.root),
        }


def split_chain(chain_pem: bytes) -> tuple[x509.Certificate, list[x509.Certificate]]:
    leaf, *rest = x509.load_pem_x509_certificates(chain_pem)
    return leaf, rest


def verify_with_pyca(chain_pem: bytes, root_pem: bytes, dns_name: str | None = None) -> VerifiedClient:
    """Client verification always; server verification too when a DNS name is given
    (pyca's server verifier matches a DNS or IP subject, never a URI)."""
    leaf, intermediates = split_chain(chain_pem)
    builder = PolicyBuilder().store(Store(x509.load_pem_x509_certificates(root_pem))).time(CHECK_AT)
    client = builder.build_client_verifier().verify(leaf, intermediates)
    if dns_name is not None:
        builder.build_server_verifier(DNSName(dns_name)).verify(leaf, intermediates)
    return client


OPENSSL = shutil.which("openssl")


def openssl_verify(tmp_path: Path, chain_pem: bytes, root_pem: bytes, purposes: Sequence[str]) -> None:
    """`openssl verify -x509_strict -CAfile root -untrusted <rest of chain> -purpose …` at CHECK_AT."""
    if OPENSSL is None:
        pytest.skip("openssl is not installed")
    leaf, intermediates = split_chain(chain_pem)
    (tmp_path / "root.pem").write_bytes(root_pem)
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))
    untrusted: list[str] = []
    if intermediates:
        (tmp_path / "chain.pem").write_bytes(b"".join(pem(c) for c in intermediates))
        untrusted = ["-untrusted", str(tmp_path / "chain.pem")]
    for purpose in purposes:
        result = subprocess.run(
            [
                OPENSSL,
                "verify",
                "-x509_strict",
                "-attime",
                str(int(CHECK_AT.timestamp())),
                "-purpose",
                purpose,
                "-CAfile",
                str(tmp_path / "root.pem"),
                *untrusted,
                str(tmp_path / "leaf.pem"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0 and result.stdout.strip().endswith(": OK"), (
            f"openssl verify -purpose {purpose}: {result.stdout}{result.stderr}"
        )
