"""The service CA operator's serving certificates and CA bundles (model.service_ca with the
router's real service CA), case for case with openshift/service-ca-operator's controllers:
the Secret (type, keys, chain, names, annotations, owner), the Service's annotations,
alpha vs beta, headless Services, re-issue, a Secret of another Service, CA bundle
injection, collection of Secrets whose Service is gone."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sailmesh.model.service_ca import reconcile
from sailmesh.resources.core import ConfigMap, Secret, Service
from sailmesh.resources.kinds import KINDS
from sailmesh.router.pki import SERVICE_UID_OID, ServiceCA
from sailmesh.store import Store

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.fixture()
def world(tmp_path: Path) -> tuple[Store, ServiceCA]:
    return Store(tmp_path / "state"), ServiceCA(tmp_path / "pki", NOW)


def _service(name: str, annotations: dict[str, str], headless: bool = False,
             ns: str = "default") -> Any:
    spec: dict[str, Any] = {"selector": {"app": name}, "ports": [{"port": 8443, "name": "https"}]}
    if headless:
        spec["clusterIP"] = "None"
    return KINDS["Service"].model_validate({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations}, "spec": spec})


def _settle(store: Store, ca: ServiceCA) -> int:
    """Run the operator until it writes nothing more; the number of rounds that wrote."""
    for rounds in range(5):
        changes = reconcile(store.snapshot(), ca, NOW)
        if not (changes.apply or changes.delete):
            return rounds
        store.apply(changes.apply)
        store.delete(changes.delete, ignore_missing=True)
    raise AssertionError("the operator never settles")


def _chain(secret: Secret) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(secret.values()["tls.crt"])


def test_beta_annotation_issues_the_secret(world: tuple[Store, ServiceCA]) -> None:
    store, ca = world
    store.apply([_service("web", {"service.beta.openshift.io/serving-cert-secret-name":
                                  "web-tls"})])
    assert _settle(store, ca) == 1
    snap = store.snapshot()
    svc = snap.get(Service, "default", "web")
    secret = snap.get(Secret, "default", "web-tls")
    assert svc is not None and secret is not None and svc.metadata.uid
    assert secret.type == "kubernetes.io/tls" and set(secret.values()) == {"tls.crt", "tls.key"}
    leaf, issuer = _chain(secret)
    # tls.crt is the certificate, then the CA (as the operator writes it).
    assert issuer.public_bytes(serialization.Encoding.PEM).decode() == ca.bundle
    assert leaf.subject.rfc4514_string() == "CN=web.default.svc"
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["web.default.svc",
                                                       "web.default.svc.cluster.local"]
    assert leaf.not_valid_after_utc - NOW == dt.timedelta(days=730)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    uid_ext = leaf.extensions.get_extension_for_oid(SERVICE_UID_OID).value
    assert isinstance(uid_ext, x509.UnrecognizedExtension)
    assert uid_ext.value[2:].decode() == svc.metadata.uid
    key = serialization.load_pem_private_key(secret.values()["tls.key"], None)
    assert key.public_key() == leaf.public_key()
    expiry = leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert secret.metadata.annotations == {
        "service.beta.openshift.io/originating-service-uid": svc.metadata.uid,
        "service.beta.openshift.io/originating-service-name": "web",
        "service.alpha.openshift.io/expiry": expiry,
        "service.beta.openshift.io/expiry": expiry,
    }
    (owner,) = secret.metadata.owner_references or []
    assert (owner.api_version, owner.kind, owner.name, owner.uid) == (
        "v1", "Service", "web", svc.metadata.uid)
    assert svc.metadata.annotations["service.beta.openshift.io/serving-cert-signed-by"] == ca.name
    assert svc.metadata.annotations["service.alpha.openshift.io/serving-cert-signed-by"] == ca.name
    assert ca.name.startswith("openshift-service-serving-signer@")


def test_alpha_annotation_and_headless_service(world: tuple[Store, ServiceCA]) -> None:
    store, ca = world
    store.apply([_service("db", {"service.alpha.openshift.io/serving-cert-secret-name": "db-tls"},
                          headless=True)])
    _settle(store, ca)
    secret = store.snapshot().get(Secret, "default", "db-tls")
    assert secret is not None
    assert "service.alpha.openshift.io/originating-service-name" in secret.metadata.annotations
    assert "service.beta.openshift.io/originating-service-name" not in secret.metadata.annotations
    leaf = _chain(secret)[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "*.db.default.svc", "*.db.default.svc.cluster.local", "db.default.svc",
        "db.default.svc.cluster.local"]
    assert leaf.subject.rfc4514_string() == "CN=*.db.default.svc"


def test_beta_wins_over_alpha(world: tuple[Store, ServiceCA]) -> None:
    store, ca = world
    store.apply([_service("web", {"service.alpha.openshift.io/serving-cert-secret-name": "a",
                                  "service.beta.openshift.io/serving-cert-secret-name": "b"})])
    _settle(store, ca)
    snap = store.snapshot()
    assert snap.get(Secret, "default", "b") is not None and snap.get(Secret, "default", "a") is None


def test_deleted_secret_is_issued_again_and_foreign_one_reissued(
        world: tuple[Store, ServiceCA]) -> None:
    store, ca = world
    store.apply([_service("web", {"service.beta.openshift.io/serving-cert-secret-name":
                                  "web-tls"})])
    _settle(store, ca)
    first = store.snapshot().get(Secret, "default", "web-tls")
    assert first is not None
    store.delete([first.key])
    assert _settle(store, ca) == 1
    again = store.snapshot().get(Secret, "default", "web-tls")
    assert again is not None and again.values()["tls.key"] != first.values()["tls.key"]
    # Its own Secret with a certificate from elsewhere (same originating UID): re-issued.
    other = ServiceCA(store.root.parent / "other-pki", NOW)
    foreign = other.issue(["web.default.svc"], "x", NOW)
    store.apply([again.model_copy(update={"data": {
        "tls.crt": base64.b64encode(foreign.chain_pem).decode(),
        "tls.key": base64.b64encode(foreign.key_pem).decode()}})])
    assert _settle(store, ca) == 1
    renewed = store.snapshot().get(Secret, "default", "web-tls")
    assert renewed is not None and _chain(renewed)[1].subject.rfc4514_string() == f"CN={ca.name}"


def test_secret_of_someone_else_is_an_error_on_the_service(
        world: tuple[Store, ServiceCA]) -> None:
    store, ca = world
    theirs = KINDS["Secret"].model_validate({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "taken", "namespace": "default"},
        "stringData": {"password": "hunter2"}})
    store.apply([theirs, _service("web", {"service.beta.openshift.io/serving-cert-secret-name":
                                          "taken"})])
    assert _settle(store, ca) == 1  # one write (the error), then nothing: no retry loop
    snap = store.snapshot()
    svc = snap.get(Service, "default", "web")
    assert svc is not None and svc.metadata.uid
    ann = svc.metadata.annotations
    error = (f"secret default/taken does not have corresponding service UID "
             f"{svc.metadata.uid}")
    assert ann["service.beta.openshift.io/serving-cert-generation-error"] == error
    assert ann["service.alpha.openshift.io/serving-cert-generation-error"] == error
    assert ann["service.beta.openshift.io/serving-cert-generation-error-num"] == "1"
    assert "service.beta.openshift.io/serving-cert-signed-by" not in ann
    kept = snap.get(Secret, "default", "taken")
    assert kept is not None and kept.values() == {"password": b"hunter2"}


def test_ca_bundle_injection(world: tuple[Store, ServiceCA]) -> None:
    store, ca = world

    def cm(name: str, annotations: dict[str, str]) -> Any:
        return KINDS["ConfigMap"].model_validate({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations},
            "data": {"other": "x"}})

    store.apply([cm("beta", {"service.beta.openshift.io/inject-cabundle": "true"}),
                 cm("alpha", {"service.alpha.openshift.io/inject-cabundle": "True"}),
                 cm("off", {"service.beta.openshift.io/inject-cabundle": "false"}),
                 cm("plain", {})])
    assert _settle(store, ca) == 1
    snap = store.snapshot()
    for name in ("beta", "alpha"):
        got = snap.get(ConfigMap, "default", name)
        # The operator replaces the data with the bundle alone.
        assert got is not None and got.data == {"service-ca.crt": ca.bundle}
    for name in ("off", "plain"):
        got = snap.get(ConfigMap, "default", name)
        assert got is not None and got.data == {"other": "x"}


def test_secret_of_a_deleted_service_is_collected(world: tuple[Store, ServiceCA]) -> None:
    store, ca = world
    store.apply([_service("web", {"service.beta.openshift.io/serving-cert-secret-name":
                                  "web-tls"})])
    _settle(store, ca)
    store.delete([("Service", "default", "web")])
    assert _settle(store, ca) == 1
    assert store.snapshot().get(Secret, "default", "web-tls") is None


def test_store_gives_uids_and_keeps_them(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.apply([_service("web", {})])
    uid = store.snapshot().get(Service, "default", "web").metadata.uid  # type: ignore[union-attr]
    assert uid and len(uid) == 36
    store.apply([_service("web", {"a": "b"})])
    assert store.snapshot().get(Service, "default", "web").metadata.uid == uid  # type: ignore[union-attr]


def test_concurrent_first_use_makes_one_matching_pki(tmp_path: Path) -> None:
    """The daemon and sailctl may create the router PKI at the same moment: one creator
    wins, every key matches its certificate, nothing fails."""
    from concurrent.futures import ThreadPoolExecutor

    from sailmesh.router.pki import ensure_pki

    pki = tmp_path / "pki"
    with ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(ensure_pki, pki, "apps.example.test", NOW) for _ in range(4)]
        jobs += [pool.submit(ServiceCA, pki, NOW) for _ in range(4)]
        results = [j.result() for j in jobs]
    names = {r.name for r in results if isinstance(r, ServiceCA)}
    assert len(names) == 1
    for stem in ("router-ca", "service-ca"):
        cert = x509.load_pem_x509_certificate((pki / f"{stem}.crt").read_bytes())
        key = serialization.load_pem_private_key((pki / f"{stem}.key").read_bytes(), None)
        assert key.public_key() == cert.public_key()
        assert (pki / f"{stem}.key").stat().st_mode & 0o777 == 0o600
