"""CertificateAuthority: the self-signed root's shape, and Istio's plug-in `cacerts` checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ca_material import NOW, Hierarchy, ca_cert, pem, split_chain, verify_with_pyca
from cryptography import x509
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, PrivateFormat
from cryptography.x509.oid import NameOID

from sailmesh.ca import CAError, CertificateAuthority, issue_workload_cert
from sailmesh.ca.keys import generate_key, private_key_pem

SVID = "spiffe://cluster.local/ns/test/sa/httpbin"


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa-2048"])
def test_self_signed_root_looks_like_istios(self_signed_cas, key_type):
    ca = self_signed_cas[key_type]
    root = ca.signing_cert
    assert ca.key_type == key_type
    assert root.subject == x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    assert root.issuer == root.subject
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(root.public_key())
    assert root.not_valid_after_utc == NOW + timedelta(days=3650)
    assert root.not_valid_before_utc == NOW - timedelta(minutes=1)
    assert ca.chain == () and ca.served_chain_pem == pem(root)  # leaf + root, as istiod
    assert ca.trust_bundle == (root,) and ca.root == root
    assert 0 < root.serial_number < 2**159


def test_self_signed_is_reproducible_with_fixed_key_rng_and_now():
    import random

    key = generate_key("ecdsa-p256")
    a = CertificateAuthority.self_signed("cluster.local", "ecdsa-p256", NOW, key=key, rng=random.Random(1))
    b = CertificateAuthority.self_signed("cluster.local", "ecdsa-p256", NOW, key=key, rng=random.Random(1))
    assert a.root_pem == b.root_pem


def test_repr_never_shows_the_key(self_signed_cas):
    ca = self_signed_cas["ecdsa-p256"]
    assert "signing_key" not in repr(ca)
    assert "PRIVATE" not in repr(ca)


@pytest.mark.parametrize(
    ("trust_domain", "now", "validity", "message"),
    [
        ("Cluster.Local", NOW, timedelta(days=1), "invalid trust domain"),
        ("cluster.local:8080", NOW, timedelta(days=1), "invalid trust domain"),
        ("", NOW, timedelta(days=1), "invalid trust domain"),
        ("cluster.local", NOW.replace(tzinfo=None), timedelta(days=1), "timezone-aware"),
        ("cluster.local", NOW, timedelta(0), "validity must be positive"),
    ],
)
def test_self_signed_rejects_bad_arguments(trust_domain, now, validity, message):
    with pytest.raises(CAError, match=message):
        CertificateAuthority.self_signed(trust_domain, "ecdsa-p256", now, validity)


def test_unknown_key_type():
    with pytest.raises(CAError, match=r"unknown key type 'dsa'"):
        CertificateAuthority.self_signed("cluster.local", "dsa", NOW)  # type: ignore[arg-type]


def test_plugin_with_intermediate_puts_it_in_the_chain(two_level: Hierarchy, tmp_path):
    ca = CertificateAuthority.from_plugin(two_level.cacerts())
    signing_cert, _ = two_level.signing
    assert ca.signing_cert == signing_cert
    assert ca.intermediates == ()
    assert ca.root == two_level.root
    assert ca.chain == (signing_cert,)

    issued = issue_workload_cert(ca, spiffe_id=SVID, now=NOW)
    leaf, rest = split_chain(issued.cert_chain_pem)
    assert rest == [signing_cert, two_level.root]  # cert-chain.pem ends with the root
    assert leaf.issuer == signing_cert.subject
    assert issued.root_pem == pem(two_level.root)
    verify_with_pyca(issued.cert_chain_pem, issued.root_pem)


def test_plugin_with_two_intermediates_orders_the_chain_leaf_to_root(three_level: Hierarchy):
    ca = CertificateAuthority.from_plugin(three_level.cacerts())
    first, second = three_level.certs
    assert ca.signing_cert == second
    assert ca.intermediates == (first,)
    assert ca.chain == (second, first)
    issued = issue_workload_cert(ca, spiffe_id=SVID, now=NOW, key_type="rsa-2048")
    _, rest = split_chain(issued.cert_chain_pem)
    assert rest == [second, first, three_level.root]
    verify_with_pyca(issued.cert_chain_pem, issued.root_pem)


def test_plugin_tls_layout_with_chain_in_tls_crt(three_level: Hierarchy):
    first, second = three_level.certs
    values = {
        "tls.crt": pem(second) + pem(first),
        "tls.key": private_key_pem(three_level.keys[-1]),
        "ca.crt": pem(three_level.root),
    }
    ca = CertificateAuthority.from_plugin(values)
    assert ca.chain == (second, first)


def test_plugin_chain_order_in_cert_chain_pem_does_not_matter(three_level: Hierarchy):
    values = three_level.cacerts()
    values["cert-chain.pem"] = pem(three_level.root) + pem(three_level.certs[0])
    assert CertificateAuthority.from_plugin(values).intermediates == (three_level.certs[0],)


def test_plugin_root_bundle_with_several_roots(two_level: Hierarchy):
    other = Hierarchy(depth=0)
    values = two_level.cacerts()
    values["root-cert.pem"] = pem(other.root) + pem(two_level.root)
    ca = CertificateAuthority.from_plugin(values)
    assert ca.root == two_level.root
    assert ca.trust_bundle == (other.root, two_level.root)
    assert ca.root_pem == values["root-cert.pem"]


def test_plugin_wrong_key_names_the_key(two_level: Hierarchy):
    values = two_level.cacerts()
    values["ca-key.pem"] = private_key_pem(generate_key("ecdsa-p256"))
    with pytest.raises(CAError, match=r"^ca-key.pem does not match ca-cert.pem") as caught:
        CertificateAuthority.from_plugin(values)
    assert "PRIVATE KEY" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_plugin_unparsable_key_is_not_quoted(two_level: Hierarchy):
    values = two_level.cacerts()
    secretish = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n"
    values["ca-key.pem"] = secretish
    with pytest.raises(CAError, match=r"^ca-key.pem is not a PEM private key$") as caught:
        CertificateAuthority.from_plugin(values)
    assert caught.value.__cause__ is None and caught.value.__context__ is not None
    assert caught.value.__suppress_context__


def test_plugin_encrypted_key(two_level: Hierarchy):
    values = two_level.cacerts()
    _, key = two_level.signing
    values["ca-key.pem"] = key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw")
    )
    with pytest.raises(CAError, match=r"ca-key.pem is an encrypted private key"):
        CertificateAuthority.from_plugin(values)


def test_plugin_small_rsa_key_is_refused(two_level: Hierarchy):
    from cryptography.hazmat.primitives.asymmetric import rsa

    values = two_level.cacerts()
    values["ca-key.pem"] = private_key_pem(rsa.generate_private_key(65537, 1024))
    with pytest.raises(CAError, match=r"ca-key.pem: RSA key of 1024 bits is too small"):
        CertificateAuthority.from_plugin(values)


def test_plugin_not_chaining_to_root(two_level: Hierarchy):
    stranger = Hierarchy(depth=0, root_name="Other Root CA")
    values = two_level.cacerts()
    values["root-cert.pem"] = pem(stranger.root)
    values["cert-chain.pem"] = values["ca-cert.pem"]
    with pytest.raises(
        CAError, match=r"^ca-cert.pem does not chain to root-cert.pem: no certificate for its issuer"
    ):
        CertificateAuthority.from_plugin(values)


def test_plugin_same_issuer_name_but_other_key(two_level: Hierarchy):
    """A root with the right name but another key: the signature decides, not the name."""
    impostor_key = generate_key("ecdsa-p256")
    impostor = ca_cert("Root CA", impostor_key, None, impostor_key)
    values = two_level.cacerts()
    values["root-cert.pem"] = pem(impostor)
    values["cert-chain.pem"] = values["ca-cert.pem"]
    with pytest.raises(
        CAError, match=r"ca-cert.pem does not chain to root-cert.pem: .* is not signed by the key of"
    ):
        CertificateAuthority.from_plugin(values)


def test_plugin_missing_intermediate(three_level: Hierarchy):
    values = three_level.cacerts()
    del values["cert-chain.pem"]
    with pytest.raises(
        CAError,
        match=r"no certificate for its issuer 'CN=Intermediate CA 1,O=Istio' in root-cert.pem or cert-chain.pem",
    ):
        CertificateAuthority.from_plugin(values)


def test_plugin_leaf_certificate_is_not_a_ca(two_level: Hierarchy):
    root = CertificateAuthority.from_plugin(
        {
            "ca-cert.pem": pem(two_level.root),
            "ca-key.pem": private_key_pem(two_level.root_key),
            "root-cert.pem": pem(two_level.root),
        }
    )
    leaf_key = generate_key("ecdsa-p256")
    issued = issue_workload_cert(root, spiffe_id=SVID, now=NOW, key=leaf_key)
    values = {
        "ca-cert.pem": issued.cert_chain_pem,
        "ca-key.pem": issued.key_pem,
        "root-cert.pem": issued.root_pem,
    }
    with pytest.raises(CAError, match=r"ca-cert.pem .* is not a CA certificate"):
        CertificateAuthority.from_plugin(values)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("ca-key.pem", "ca-cert.pem is present but ca-key.pem missing"),
        ("root-cert.pem", "ca-cert.pem is present but root-cert.pem missing"),
        ("ca-cert.pem", "cacerts holds neither ca-cert.pem nor tls.crt"),
    ],
)
def test_plugin_missing_keys(two_level: Hierarchy, drop, message):
    values = two_level.cacerts()
    del values[drop]
    with pytest.raises(CAError, match=message):
        CertificateAuthority.from_plugin(values)


def test_plugin_garbage_certificate(two_level: Hierarchy):
    values = two_level.cacerts()
    values["root-cert.pem"] = b"not a certificate"
    with pytest.raises(CAError, match=r"root-cert.pem holds no valid PEM certificate"):
        CertificateAuthority.from_plugin(values)


def test_plugin_ca_lifetime_caps_workload_certificates(two_level: Hierarchy):
    ca = CertificateAuthority.from_plugin(two_level.cacerts())
    late = ca.not_after - timedelta(hours=2)
    issued = issue_workload_cert(ca, spiffe_id=SVID, now=late)
    assert issued.not_after == ca.not_after
    with pytest.raises(CAError, match=r"the CA expired"):
        issue_workload_cert(ca, spiffe_id=SVID, now=ca.not_after)
