"""Workload certificates: SPIFFE ids, the X.509-SVID shape, TTL bounds, and verification of the
issued chain by two independent verifiers (pyca's webpki verifier and `openssl verify`)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from ca_material import NOW, Hierarchy, openssl_verify, split_chain, verify_with_pyca
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import VerificationError

from sailmesh.ca import CAError, CertificateAuthority, check_spiffe_id, issue_workload_cert
from sailmesh.ca.keys import generate_key
from sailmesh.ca.workload import spiffe_id

SVID = "spiffe://cluster.local/ns/test/sa/httpbin"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("cluster.local", "test", "httpbin"), "spiffe://cluster.local/ns/test/sa/httpbin"),
        (
            ("example.org", "istio-system", "istio-ingressgateway-service-account"),
            "spiffe://example.org/ns/istio-system/sa/istio-ingressgateway-service-account",
        ),
        (("td_1", "a.b", "Default"), "spiffe://td_1/ns/a.b/sa/Default"),
    ],
)
def test_spiffe_id(args, expected):
    assert spiffe_id(*args) == expected
    assert check_spiffe_id(expected) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Cluster.local", "test", "sa"), "invalid trust domain 'Cluster.local'"),
        (("cluster.local:443", "test", "sa"), "invalid trust domain"),
        (("cluster.local", "", "sa"), "invalid namespace ''"),
        (("cluster.local", "te/st", "sa"), "invalid namespace 'te/st'"),
        (("cluster.local", "..", "sa"), r"invalid namespace '\.\.'"),
        (("cluster.local", "test", "s a"), "invalid service account 's a'"),
        (("cluster.local", "test", "sa%2F"), "invalid service account"),
    ],
)
def test_spiffe_id_rejects(args, message):
    with pytest.raises(CAError, match=message):
        spiffe_id(*args)


@pytest.mark.parametrize(
    "value",
    [
        "https://cluster.local/ns/a/sa/b",
        "spiffe://cluster.local",
        "spiffe://cluster.local/",
        "spiffe://cluster.local/ns//sa/b",
        "spiffe://cluster.local/ns/a/sa/b/",
        "spiffe://user@cluster.local/ns/a",
        "spiffe://cluster.local/" + "a" * 2048,
    ],
)
def test_check_spiffe_id_rejects(value):
    with pytest.raises(CAError):
        check_spiffe_id(value)


@pytest.mark.parametrize("ca_key", ["ecdsa-p256", "rsa-2048"])
@pytest.mark.parametrize("leaf_key", ["ecdsa-p256", "rsa-2048"])
def test_issued_chain_verifies_for_client_and_server(self_signed_cas, ca_key, leaf_key, tmp_path):
    ca = self_signed_cas[ca_key]
    issued = issue_workload_cert(ca, spiffe_id=SVID, key_type=leaf_key, now=NOW)
    client = verify_with_pyca(issued.cert_chain_pem, issued.root_pem)
    assert client.subjects == [x509.UniformResourceIdentifier(SVID)]
    openssl_verify(tmp_path, issued.cert_chain_pem, issued.root_pem, ["sslclient", "sslserver"])


def test_issued_chain_with_dns_name_passes_pyca_server_verification(self_signed_cas, tmp_path):
    ca = self_signed_cas["ecdsa-p256"]
    issued = issue_workload_cert(ca, spiffe_id=SVID, now=NOW, dns_names=["httpbin.test.svc.cluster.local"])
    client = verify_with_pyca(
        issued.cert_chain_pem, issued.root_pem, dns_name="httpbin.test.svc.cluster.local"
    )
    assert client.subjects == [
        x509.UniformResourceIdentifier(SVID),
        x509.DNSName("httpbin.test.svc.cluster.local"),
    ]
    with pytest.raises(VerificationError):
        verify_with_pyca(issued.cert_chain_pem, issued.root_pem, dns_name="other.test.svc.cluster.local")


def test_plugin_chain_verifies_with_openssl(three_level: Hierarchy, tmp_path):
    ca = CertificateAuthority.from_plugin(three_level.cacerts())
    issued = issue_workload_cert(ca, spiffe_id=SVID, key_type="rsa-2048", now=NOW)
    # Istio's plug-in CA serves leaf, the CA certificate, the intermediate and the root.
    rest = split_chain(issued.cert_chain_pem)[1]
    assert len(rest) == 3 and rest[-1] == ca.root
    openssl_verify(tmp_path, issued.cert_chain_pem, issued.root_pem, ["sslclient", "sslserver"])


def test_chain_from_another_ca_does_not_verify(self_signed_cas, tmp_path):
    issued = issue_workload_cert(self_signed_cas["ecdsa-p256"], spiffe_id=SVID, now=NOW)
    with pytest.raises(VerificationError):
        verify_with_pyca(issued.cert_chain_pem, self_signed_cas["rsa-2048"].root_pem)
    with pytest.raises(AssertionError, match="openssl verify"):
        openssl_verify(tmp_path, issued.cert_chain_pem, self_signed_cas["rsa-2048"].root_pem, ["sslclient"])


def test_svid_shape(self_signed_cas):
    ca = self_signed_cas["rsa-2048"]
    issued = issue_workload_cert(ca, spiffe_id=SVID, now=NOW)
    leaf, rest = split_chain(issued.cert_chain_pem)
    assert rest == [ca.root]  # self-signed root: leaf + root, as istiod serves
    assert leaf.subject == x509.Name([])
    assert leaf.issuer == ca.signing_cert.subject
    ext = leaf.extensions
    san = ext.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical  # empty subject (RFC 5280 §4.2.1.6)
    assert list(san.value) == [x509.UniformResourceIdentifier(SVID)]
    basic = ext.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.key_encipherment
    assert not (usage.value.key_cert_sign or usage.value.crl_sign or usage.value.key_agreement)
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = ca.signing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest
    assert issued.serial == leaf.serial_number and issued.serial > 0
    assert issued.spiffe_id == SVID
    assert issued.root_pem == ca.root_pem


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa-2048"])
def test_key_pem_matches_leaf(self_signed_cas, key_type):
    issued = issue_workload_cert(self_signed_cas["ecdsa-p256"], spiffe_id=SVID, key_type=key_type, now=NOW)
    assert issued.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(issued.key_pem, password=None)
    leaf, _ = split_chain(issued.cert_chain_pem)
    assert key.public_key() == leaf.public_key()
    assert "key_pem" not in repr(issued) and "PRIVATE" not in repr(issued)


def test_default_ttl_and_backdating(self_signed_cas):
    issued = issue_workload_cert(self_signed_cas["ecdsa-p256"], spiffe_id=SVID, now=NOW)
    assert issued.not_before == NOW - timedelta(minutes=1)
    assert issued.not_after == NOW + timedelta(hours=24)
    leaf, _ = split_chain(issued.cert_chain_pem)
    assert leaf.not_valid_before_utc == issued.not_before
    assert leaf.not_valid_after_utc == issued.not_after


def test_microseconds_are_dropped_so_returned_times_equal_the_certificate(self_signed_cas):
    issued = issue_workload_cert(
        self_signed_cas["ecdsa-p256"], spiffe_id=SVID, now=NOW.replace(microsecond=999_999)
    )
    leaf, _ = split_chain(issued.cert_chain_pem)
    assert issued.not_before == leaf.not_valid_before_utc == NOW - timedelta(minutes=1)


@pytest.mark.parametrize("ttl", [timedelta(seconds=1), timedelta(minutes=5), timedelta(days=90)])
def test_ttl_within_bounds(self_signed_cas, ttl):
    issued = issue_workload_cert(self_signed_cas["ecdsa-p256"], spiffe_id=SVID, ttl=ttl, now=NOW)
    assert issued.not_after - NOW == ttl


@pytest.mark.parametrize("ttl", [timedelta(days=90, seconds=1), timedelta(0), timedelta(seconds=-1)])
def test_ttl_out_of_bounds(self_signed_cas, ttl):
    with pytest.raises(CAError, match="TTL must be above 0 and at most 90 days"):
        issue_workload_cert(self_signed_cas["ecdsa-p256"], spiffe_id=SVID, ttl=ttl, now=NOW)


def test_leaf_never_outlives_the_root(self_signed_cas):
    ca = self_signed_cas["ecdsa-p256"]
    late = ca.not_after - timedelta(hours=1)
    issued = issue_workload_cert(ca, spiffe_id=SVID, now=late)
    assert issued.not_after == ca.not_after


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spiffe_id": "spiffe://cluster.local"}, "needs a path"),
        ({"now": NOW.replace(tzinfo=None)}, "timezone-aware"),
        ({"now": NOW - timedelta(days=1)}, "not valid before"),
        ({"dns_names": ["bücher.example"]}, "invalid DNS name"),
        ({"dns_names": [""]}, "invalid DNS name"),
        ({"key_type": "rsa-2048", "key": "ecdsa"}, "key is ecdsa-p256 but key_type is 'rsa-2048'"),
    ],
)
def test_issue_rejects(self_signed_cas, kwargs, message):
    args = {"spiffe_id": SVID, "now": NOW, **kwargs}
    if args.get("key") == "ecdsa":
        args["key"] = generate_key("ecdsa-p256")
    with pytest.raises(CAError, match=message):
        issue_workload_cert(self_signed_cas["ecdsa-p256"], **args)


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa-2048"])
def test_deterministic_with_fixed_now_key_and_rng(self_signed_cas, key_type):
    """Equal arguments, equal bytes: nothing inside reads a clock or an unseeded random source."""
    ca = self_signed_cas[key_type]
    key = generate_key(key_type)  # type: ignore[arg-type]
    first, second = (
        issue_workload_cert(ca, spiffe_id=SVID, key_type=key_type, now=NOW, key=key, rng=random.Random(42))
        for _ in range(2)
    )
    assert first == second
    later = issue_workload_cert(
        ca, spiffe_id=SVID, key_type=key_type, now=NOW + timedelta(seconds=1), key=key, rng=random.Random(42)
    )
    assert later.cert_chain_pem != first.cert_chain_pem
    assert later.not_before - first.not_before == timedelta(seconds=1)


def test_fixed_now_gives_fixed_validity_even_with_fresh_keys(self_signed_cas):
    a = issue_workload_cert(self_signed_cas["ecdsa-p256"], spiffe_id=SVID, now=NOW)
    b = issue_workload_cert(self_signed_cas["ecdsa-p256"], spiffe_id=SVID, now=NOW)
    assert (a.not_before, a.not_after) == (b.not_before, b.not_after)
    assert a.serial != b.serial and a.key_pem != b.key_pem
