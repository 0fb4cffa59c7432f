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
