"""The root in the state dir: file modes, reuse across starts, refusing half-present state."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta

import pytest
from ca_material import NOW

from sailmesh.ca import CAError, load_or_create_root


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Modes must not depend on the caller's umask: run with the most permissive one."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa-2048"])
def test_creates_root_with_private_modes(tmp_path, open_umask, key_type):
    ca = load_or_create_root(tmp_path / "state", "cluster.local", key_type, NOW)
    ca_dir = tmp_path / "state" / "ca"
    assert mode(ca_dir) == 0o700
    assert mode(ca_dir / "root-key.pem") == 0o600
    assert mode(ca_dir / "root-cert.pem") == 0o644
    assert sorted(p.name for p in ca_dir.iterdir()) == ["root-cert.pem", "root-key.pem"]  # no temp files left
    assert (ca_dir / "root-cert.pem").read_bytes() == ca.root_pem
    assert ca.key_type == key_type


def test_reuses_the_stored_root(tmp_path):
    first = load_or_create_root(tmp_path, "cluster.local", "ecdsa-p256", NOW)
    # A later start with other settings keeps the existing root, as istiod keeps istio-ca-secret.
    again = load_or_create_root(tmp_path, "example.org", "rsa-2048", NOW + timedelta(days=30))
    assert again.root_pem == first.root_pem
    assert again.key_type == "ecdsa-p256"
    assert again.signing_key.private_numbers() == first.signing_key.private_numbers()
    assert again.chain == ()


def test_tightens_an_existing_directory_and_key(tmp_path):
    load_or_create_root(tmp_path, "cluster.local", "ecdsa-p256", NOW)
    os.chmod(tmp_path / "ca", 0o755)
    os.chmod(tmp_path / "ca" / "root-key.pem", 0o644)
    load_or_create_root(tmp_path, "cluster.local", "ecdsa-p256", NOW)
    assert mode(tmp_path / "ca") == 0o700
    assert mode(tmp_path / "ca" / "root-key.pem") == 0o600


@pytest.mark.parametrize("lone", ["root-cert.pem", "root-key.pem"])
def test_a_lone_file_is_an_error_not_overwritten(tmp_path, lone):
    load_or_create_root(tmp_path, "cluster.local", "ecdsa-p256", NOW)
    other = {"root-cert.pem": "root-key.pem", "root-key.pem": "root-cert.pem"}[lone]
    (tmp_path / "ca" / other).unlink()
    before = (tmp_path / "ca" / lone).read_bytes()
    with pytest.raises(CAError, match=f"{lone} exists but .*{other} does not"):
        load_or_create_root(tmp_path, "cluster.local", "ecdsa-p256", NOW)
    assert (tmp_path / "ca" / lone).read_bytes() == before


def test_corrupt_key_names_the_directory_not_the_bytes(tmp_path):
    load_or_create_root(tmp_path, "cluster.local", "ecdsa-p256", NOW)
    key_path = tmp_path / "ca" / "root-key.pem"
    key_path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CAError, match=r"ca: root-key.pem is not a PEM private key$") as caught:
        load_or_create_root(tmp_path, "cluster.local", "ecdsa-p256", NOW)
    assert "c2VjcmV0" not in str(caught.value)


def test_key_of_another_root_is_refused(tmp_path):
    load_or_create_root(tmp_path / "one", "cluster.local", "ecdsa-p256", NOW)
    load_or_create_root(tmp_path / "two", "cluster.local", "ecdsa-p256", NOW)
    (tmp_path / "one" / "ca" / "root-key.pem").write_bytes(
        (tmp_path / "two" / "ca" / "root-key.pem").read_bytes()
    )
    with pytest.raises(CAError, match=r"root-key.pem does not match root-cert.pem"):
        load_or_create_root(tmp_path / "one", "cluster.local", "ecdsa-p256", NOW)
