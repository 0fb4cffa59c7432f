"""`sailctl apply` through the running daemon (meshd's `apply` operation, as kubectl through
the API server) and without one (the CLI applies the input itself): the same input gives
the same output, line for line and stream for stream, and the same exit code.

The daemon side is meshd's real operation (`ControlOps._op_write`) on the real control
socket (tests/unit/daemon_stand_in.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest
from tests.unit.daemon_stand_in import FakeMeshd, both, meshd, sailctl, same

from sailmesh.meshd import control
from sailmesh.meshd.paths import Home

__all__ = ["meshd"]  # the fixture

BAD_INPUTS = Path(__file__).parent / "bad_inputs"

VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  hosts: [web]
  http: [{route: [{destination: {host: web}}]}]
"""
WARNED = (BAD_INPUTS / "24-old-tls-without-ciphers.yaml").read_text()  # applies, with a warning


@pytest.mark.parametrize("bad", sorted(p.name for p in BAD_INPUTS.glob("*.yaml")))
def test_bad_inputs_give_the_same_errors_and_warnings(
        meshd: FakeMeshd, tmp_path: Path, bad: str) -> None:
    up, down = both(meshd, tmp_path, "apply", "-f", str(BAD_INPUTS / bad))
    same(up, down)
    if up.exit_code == 0:  # warnings only: applied, warned about at file:line
        assert f"{BAD_INPUTS / bad}:" in up.stderr and ": warning: " in up.stderr
        assert meshd.syncs == 1
        return
    # The loader's errors name file:line; the store's (a missing namespace) the object.
    assert up.exit_code == 1 and (f"{BAD_INPUTS / bad}:" in up.stderr
                                  or 'not found (ConfigMap a/nginx-config)' in up.stderr)
    assert meshd.store.list() == [] and meshd.syncs == 0


def test_good_input_the_same_lines_and_warnings(meshd: FakeMeshd, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a-vs.yaml").write_text(VS)
    (tmp_path / "dir" / "b-gw.yml").write_text(WARNED)
    (tmp_path / "dir" / "notes.txt").write_text("not: [yaml")
    up, down = both(meshd, tmp_path, "apply", "-f", str(tmp_path / "dir"))
    same(up, down)
    assert up.exit_code == 0, up.output
    assert up.stdout == ("virtualservice.networking.istio.io/web created\n"
                         "gateway.networking.istio.io/legacy-gateway created\n")
    assert "b-gw.yml:16: warning: Gateway default/legacy-gateway" in up.stderr
    assert meshd.syncs == 1
    again = both(meshd, tmp_path, "apply", "-f", str(tmp_path / "dir" / "a-vs.yaml"))
    same(*again)
    assert again[0].stdout == "virtualservice.networking.istio.io/web unchanged\n"


@pytest.mark.parametrize(("args", "stdin", "said"), [
    (["-f", "-", "-l", "app=other"], VS, "error: no objects passed to apply\n"),
    (["-f", "-", "-n", "test"], VS, 'You must pass \'--namespace=default\''),
    (["-f", "-"], VS.replace("default", "test"), 'namespaces "test" not found'),
    (["-f", "/nonexistent/vs.yaml"], None, 'the path "/nonexistent/vs.yaml" does not exist'),
    (["-f", "-"], "a: [", "STDIN:1"),
])
def test_refusals_are_thesame(meshd: FakeMeshd, tmp_path: Path, args: list[str],
                               stdin: str | None, said: str) -> None:
    up, down = both(meshd, tmp_path, "apply", *args, stdin=stdin)
    same(up, down)
    assert up.exit_code == 1 and said in up.stderr
    assert meshd.store.list() == [] and meshd.syncs == 0


def test_selector_applies_only_matching_objects(meshd: FakeMeshd, tmp_path: Path) -> None:
    up, down = both(meshd, tmp_path, "apply", "-f", "-", "-l", "app=web",
                     stdin=VS + "---\n" + WARNED)
    same(up, down)
    assert up.stdout == "virtualservice.networking.istio.io/web created\n"
    assert [r.kind for r in meshd.store.list()] == ["VirtualService"]


def test_proxies_that_did_not_confirm_fail_the_command(meshd: FakeMeshd, tmp_path: Path) -> None:
    meshd.sync_reply = {"version": "v2", "proxies": {
        "sidecar~web-0.default": "LDS rejected by Envoy: invalid listener",
        "router~gw-0.istio-system": True}, "diagnostics": [
        {"severity": "warning", "ref": "VirtualService default/web", "field": "spec.http",
         "message": "no route"},
        {"severity": "error", "ref": "Gateway default/other", "field": "", "message": "unrelated"}]}
    result = sailctl(meshd.store.root, "apply", "-f", "-", stdin=VS)
    assert result.exit_code == 1
    assert result.stdout == "virtualservice.networking.istio.io/web created\n"
    assert result.stderr == (
        "warning: VirtualService default/web: spec.http: no route\n"
        "error: proxy sidecar~web-0.default has not applied the new configuration: "
        "LDS rejected by Envoy: invalid listener\n")


def test_large_input_through_the_daemon(meshd: FakeMeshd, tmp_path: Path) -> None:
    """Three ConfigMaps of 0.9 MB each on stdin (2.7 MB, under the API server's 3 MiB
    limit), then 3.2 MB: refused by size, on both paths alike."""
    def cm(name: str, size: int) -> str:
        return (f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n"
                f"data:\n  blob: {'x' * size}\n")
    big = "---\n".join(cm(name, 900_000) for name in ("one", "two", "three"))
    result = sailctl(meshd.store.root, "apply", "-f", "-", stdin=big)
    assert result.exit_code == 0, result.output
    assert result.stdout == "configmap/one created\nconfigmap/two created\nconfigmap/three created\n"
    assert meshd.syncs == 1
    up, down = both(meshd, tmp_path, "apply", "-f", "-", stdin=big + "---\n" + cm("four", 500_000))
    same(up, down)
    assert "Request entity too large" in up.stderr and up.exit_code == 1


def test_the_daemon_keeps_serving_after_a_request_it_cannot_read(meshd: FakeMeshd) -> None:
    socket_path = Home.from_env().control_socket
    with pytest.raises(control.ControlError, match="a source is"):
        control.call(socket_path, "apply", sources=[{"name": "x"}])
    reply = control.call(socket_path, "apply", sources=[{"name": "-", "text": VS}])
    assert reply["code"] == 0 and reply["lines"] == [
        ["out", "virtualservice.networking.istio.io/web created"]]


def test_control_socket_is_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "meshd.sock"

    async def serve() -> int:
        old = os.umask(0)
        try:
            server = await control.serve(path, {})
        finally:
            os.umask(old)
        mode = path.stat().st_mode
        server.close()
        return mode

    mode = asyncio.run(serve())
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meshd.sock"]  # no leftovers


def test_report_is_json(meshd: FakeMeshd) -> None:
    reply = control.call(Home.from_env().control_socket, "apply",
                         sources=[{"name": "STDIN", "text": VS}], namespace=None, selector=None)
    assert json.loads(json.dumps(reply)) == reply and reply["refs"] == ["VirtualService default/web"]
