"""Session fixtures for the CA tests (material and verifiers live in ca_material.py)."""

from __future__ import annotations

import pytest
from ca_material import KEY_TYPES, NOW, Hierarchy

from sailmesh.ca import CertificateAuthority


@pytest.fixture(scope="session")
def self_signed_cas() -> dict[str, CertificateAuthority]:
    return {kt: CertificateAuthority.self_signed("cluster.local", kt, NOW) for kt in KEY_TYPES}  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def two_level() -> Hierarchy:
    return Hierarchy(depth=1)


@pytest.fixture(scope="session")
def three_level() -> Hierarchy:
    return Hierarchy(depth=2, key_type="rsa-2048")
