"""Whether a pod's istio-proxy can read a path: pod volumes, binds, the host filesystem, and
the proxy's uid — checked before a DestinationRule's file paths reach Envoy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sailmesh.meshd.proxy_files import proxy_file_problem
from sailmesh.runtime.plans import ContainerPlan, PodPlan, VolumePlan

UID = 1337


def _pod(tmp: Path, *, volume_mode: int = 0o644, uid: int | None = UID) -> PodPlan:
    proxy = ContainerPlan("istio-proxy", ("/usr/local/bin/envoy",), {}, run_as_uid=uid,
                          binds=((str(tmp / "bound"), "/etc/istio/proxy"),))
    certs = VolumePlan("/etc/client-certs", {"tls.crt": b"c", "tls.key": b"k"}, mode=volume_mode)
    return PodPlan("app", "sleep-1", {}, (ContainerPlan("app", ("/bin/sleep",), {}), proxy),
                   volumes=(certs,))


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    os.chmod(tmp_path, 0o755)
    (tmp_path / "bound").mkdir(mode=0o755)
    (tmp_path / "bound" / "envoy.json").write_text("{}")
    return tmp_path


def test_files_of_a_mounted_volume(tmp: Path) -> None:
    problem = proxy_file_problem(_pod(tmp))
    assert problem("/etc/client-certs/tls.crt") is None
    assert problem("/etc/client-certs/ca.crt") == (
        "no file ca.crt in the volume mounted at /etc/client-certs (it has: tls.crt, tls.key)")
    assert "is a directory" in (problem("/etc/client-certs") or "")
    assert problem("etc/client-certs/tls.crt") == "not an absolute path"


def test_a_volume_mode_that_keeps_the_proxy_out(tmp: Path) -> None:
    assert proxy_file_problem(_pod(tmp, volume_mode=0o400))("/etc/client-certs/tls.key") == (
        "mode 0400 of the volume at /etc/client-certs keeps uid 1337 out")
    # A root proxy (gateway) reads it.
    assert proxy_file_problem(_pod(tmp, volume_mode=0o400, uid=None))(
        "/etc/client-certs/tls.key") is None


def test_binds_resolve_to_their_host_directory(tmp: Path) -> None:
    problem = proxy_file_problem(_pod(tmp))
    assert problem("/etc/istio/proxy/envoy.json") is None
    assert problem("/etc/istio/proxy/missing.pem") == "no such file in the proxy's filesystem"


def test_host_files_and_the_proxy_uid(tmp: Path) -> None:
    problem = proxy_file_problem(_pod(tmp))
    # A container's root holds the host's system directories and a few /etc entries only.
    outside = "no such file in the proxy's filesystem"
    assert problem("/etc/shadow") == outside
    assert problem("/var/tmp/some.key") == outside
    if Path("/etc/ssl/certs/ca-certificates.crt").exists():
        assert problem("/etc/ssl/certs/ca-certificates.crt") is None
    # Inside a bound directory: the proxy's uid must be able to read.
    bound = tmp / "bound"
    bound.mkdir(exist_ok=True)
    secret = bound / "root-only.key"
    secret.write_text("k")
    os.chmod(secret, 0o600)
    assert problem("/etc/istio/proxy/root-only.key") == "not readable by the proxy's uid 1337"
    os.chmod(secret, 0o644)
    assert problem("/etc/istio/proxy/root-only.key") is None
    hidden = bound / "private"
    hidden.mkdir(mode=0o700)
    (hidden / "ca.crt").write_text("c")
    os.chmod(hidden / "ca.crt", 0o644)
    assert problem("/etc/istio/proxy/private/ca.crt") == (
        f"directory {hidden} is not searchable by the proxy's uid 1337")


def test_the_pods_own_tmp_is_left_to_envoy(tmp: Path) -> None:
    assert proxy_file_problem(_pod(tmp))("/tmp/anything.pem") is None
