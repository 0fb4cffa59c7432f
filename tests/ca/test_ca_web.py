"""The offline internet's root: its files and trust bundle, site certificates a real TLS client
accepts for their names only, and when a site certificate must be issued again."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import threading
from datetime import UTC, datetime, timedelta

import pytest
from ca_material import NOW
from cryptography import x509

from sailmesh.ca import CAError
from sailmesh.ca.storage import load_or_create_root, load_or_create_web_root, write_trust_bundle
from sailmesh.ca.web import SITE_VALIDITY, issue_site_cert, needs_new_site_cert


def test_root_files_and_bundle(tmp_path):
    root = load_or_create_web_root(tmp_path, NOW)
    web = tmp_path / "web-ca"
    assert stat.S_IMODE(web.stat().st_mode) == 0o700
    assert stat.S_IMODE((web / "root-key.pem").stat().st_mode) == 0o600
    assert load_or_create_web_root(tmp_path, NOW + timedelta(days=1)).root_pem == root.root_pem
    # Not the mesh's CA: another directory, another key.
    assert load_or_create_root(tmp_path, "cluster.local", "ecdsa-p256", NOW).root_pem != root.root_pem
    host = tmp_path / "system.crt"
    host.write_bytes(b"-----BEGIN CERTIFICATE-----\nhost\n-----END CERTIFICATE-----")
    bundle = write_trust_bundle(tmp_path, root, host)
    assert bundle.read_bytes() == host.read_bytes() + b"\n" + root.root_pem
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o644
    assert write_trust_bundle(tmp_path, root, tmp_path / "absent").read_bytes() == root.root_pem


def _handshake(root_pem: bytes, site, server_name: str, tmp_path) -> None:
    """A TLS handshake with Python's ssl: server with the site certificate, client trusting
    only `root_pem` and checking `server_name`."""
    (tmp_path / "c.pem").write_bytes(site.cert_pem)
    (tmp_path / "k.pem").write_bytes(site.key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    client_ctx = ssl.create_default_context(cadata=root_pem.decode())
    a, b = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(a, server_side=True):
                pass
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)

    t = threading.Thread(target=serve)
    t.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname=server_name):
            pass
    finally:
        t.join()


def test_site_certificate_is_accepted_for_its_names_only(tmp_path):
    now = datetime.now(UTC)  # the handshake checks validity against the real clock
    root = load_or_create_web_root(tmp_path, now)
    site = issue_site_cert(root, ["edition.cnn.com", "cnn.com"], now)
    cert = x509.load_pem_x509_certificate(site.cert_pem)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == SITE_VALIDITY + timedelta(minutes=1)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["edition.cnn.com", "cnn.com"]
    _handshake(root.root_pem, site, "edition.cnn.com", tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(root.root_pem, site, "www.example.com", tmp_path)
    other = load_or_create_web_root(tmp_path / "other", now)
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _handshake(other.root_pem, site, "edition.cnn.com", tmp_path)


@pytest.mark.parametrize("hosts", [[], [""], ["bad name"], ["bücher.example"]])
def test_bad_host_names_are_refused(tmp_path, hosts):
    with pytest.raises(CAError):
        issue_site_cert(load_or_create_web_root(tmp_path, NOW), hosts, NOW)


def test_when_a_site_certificate_is_issued_again(tmp_path):
    root = load_or_create_web_root(tmp_path, NOW)
    site = issue_site_cert(root, ["edition.cnn.com"], NOW)
    hosts = ["edition.cnn.com"]
    assert not needs_new_site_cert(site.cert_pem, hosts, root.root, NOW + timedelta(days=59))
    assert needs_new_site_cert(site.cert_pem, hosts, root.root, NOW + timedelta(days=61))
    assert needs_new_site_cert(site.cert_pem, ["edition.cnn.com", "cnn.com"], root.root, NOW)
    assert needs_new_site_cert(None, hosts, root.root, NOW)
    assert needs_new_site_cert(b"not a certificate", hosts, root.root, NOW)
    os.remove(tmp_path / "web-ca" / "root-key.pem")
    os.remove(tmp_path / "web-ca" / "root-cert.pem")
    renewed_root = load_or_create_web_root(tmp_path, NOW)
    assert needs_new_site_cert(site.cert_pem, hosts, renewed_root.root, NOW)
