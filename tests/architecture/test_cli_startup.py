"""`sailctl apply` starts without the control plane's code.

Every apply's latency (apply of a VirtualService → first request served, bench/gateway_tls.py)
includes the CLI's start-up. Importing the Envoy protobufs, the translation or the pod runtime
costs ~150 ms on this machine: a helper imported from `meshd.planner` once pulled them all in
(runtime.pods → podfs → translate) and made every apply that much slower.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Packages the CLI's configuration commands must not load: the mesh's own machinery and
# the heavy libraries only it needs.
FORBIDDEN = ("envoy", "google.protobuf", "grpc", "cryptography", "sailmesh.translate",
             "sailmesh.control", "sailmesh.xds", "sailmesh.runtime", "sailmesh.ca",
             "sailmesh.telemetry", "sailmesh.analysis")

PROBE = """
import json, sys
import click
from sailmesh.cli.main import cli
cli.get_command(click.Context(cli), sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("command", ["apply", "delete", "get", "create"])
def test_configuration_commands_load_no_control_plane_code(command: str) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, command], capture_output=True, text=True,
                         check=True).stdout
    loaded = json.loads(out)
    heavy = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert not heavy, f"sailctl {command} imports {heavy[:10]}"


# `sailctl apply|create|replace|delete -f` (and the other write commands) with a running daemon, which answers on the control
# socket (a stand-in here, made of the standard library): the command only reads and sends
# its input.
REMOTE_APPLY = """
import json, os, socket, sys, threading
home = sys.argv[1]
os.makedirs(home + "/run")
os.environ["SAILMESH_HOME"] = home
listener = socket.socket(socket.AF_UNIX)
listener.bind(home + "/run/meshd.sock")
listener.listen()
seen = []

def answer():
    conn, _ = listener.accept()
    buf = b""
    while not buf.endswith(b"\\n"):
        buf += conn.recv(1 << 16)
    seen.append(json.loads(buf))
    conn.sendall(json.dumps({"lines": [["out", "configmap/x created"]], "code": 0}).encode() + b"\\n")
    conn.close()

threading.Thread(target=answer, daemon=True).start()
from sailmesh.cli.main import cli
try:
    cli.main(sys.argv[2:], prog_name="sailctl")
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps({"request": seen[0], "modules": sorted(sys.modules)}))
"""
# What the models cost (pydantic builds their schemas at import) is meshd's, not apply's.
MODEL_CODE = ("pydantic", "yaml", "sailmesh.resources", "sailmesh.store", "sailmesh.model")


@pytest.mark.parametrize(("args", "options"), [
    (["apply"], {}),
    (["apply", "--dry-run=server"], {"dry_run": "server"}),
    (["create"], {}),
    (["create", "--dry-run=server"], {"dry_run": "server"}),
    (["replace"], {}),
    (["delete", "--ignore-not-found"], {"ignore_not_found": True}),
    (["delete", "--dry-run=server"], {"dry_run": "server"}),
])
def test_file_verbs_through_the_daemon_load_no_models(
        tmp_path: Path, args: list[str], options: dict[str, object]) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    run = subprocess.run([sys.executable, "-c", REMOTE_APPLY, str(tmp_path / "home"), *args,
                          "-f", str(manifest)], capture_output=True, text=True, check=True)
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["request"]["op"] == args[0]
    assert out["request"]["sources"] == [{"name": str(manifest), "text": manifest.read_text(),
                                          "error": None}]
    assert {k: out["request"].get(k) for k in options} == options
    heavy = [m for m in out["modules"]
             if any(m == f or m.startswith(f + ".") for f in MODEL_CODE + FORBIDDEN)]
    assert not heavy, f"sailctl {' '.join(args)} -f (through the daemon) imports {heavy[:10]}"
    assert "configmap/x created" in run.stdout


@pytest.mark.parametrize(("args", "request_"), [
    (["delete", "vs", "web", "x"], {"op": "delete_named", "args": ["vs", "web", "x"]}),
    (["delete", "cm", "-l", "app=x", "--dry-run=server"],
     {"op": "delete_named", "args": ["cm"], "selector": "app=x", "dry_run": "server"}),
    (["delete", "vs,cm", "--all", "--ignore-not-found"],
     {"op": "delete_named", "args": ["vs,cm"], "all": True, "ignore_not_found": True}),
    (["label", "ns", "foo", "a=b", "--overwrite"],
     {"op": "label", "args": ["ns", "foo", "a=b"], "overwrite": True}),
    (["annotate", "vs/web", "a-"], {"op": "annotate", "args": ["vs/web", "a-"]}),
])
def test_named_verbs_through_the_daemon_load_no_models(
        tmp_path: Path, args: list[str], request_: dict[str, object]) -> None:
    """`delete KIND NAME|-l|--all`, `label`, `annotate`: the arguments are sent as they are;
    kinds are resolved by the daemon, which has the models."""
    run = subprocess.run([sys.executable, "-c", REMOTE_APPLY, str(tmp_path / "home"), *args],
                         capture_output=True, text=True, check=True)
    out = json.loads(run.stdout.splitlines()[-1])
    assert {k: out["request"].get(k) for k in request_} == request_
    heavy = [m for m in out["modules"]
             if any(m == f or m.startswith(f + ".") for f in MODEL_CODE + FORBIDDEN)]
    assert not heavy, f"sailctl {' '.join(args)} (through the daemon) imports {heavy[:10]}"
