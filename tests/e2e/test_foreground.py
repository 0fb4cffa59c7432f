"""`sailctl up` without -d: a live view in the foreground; Ctrl-C stops the whole mesh."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.mesh import BIN, SAILCTL, port_in_use

pytestmark = pytest.mark.e2e


def test_foreground_up_and_ctrl_c() -> None:
    assert not port_in_use(8443), "the ingress ports are busy (is a mesh running?)"
    home = Path(tempfile.mkdtemp(prefix="smfg-", dir="/tmp"))
    env = {**os.environ, "SAILMESH_HOME": str(home), "SAILMESH_INSTANCE": "fg",
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.Popen([SAILCTL, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        seen = ""
        assert proc.stdout is not None
        while "Ctrl-C stops the mesh" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "ingress gateway ready" in seen, seen
        status = subprocess.run([SAILCTL, "status"], env=env, capture_output=True, text=True).stdout
        assert re.search(r"istio-ingressgateway-\S+\s+1/1\s+Running", status), status
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert "mesh stopped" in out
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not re.search(r"^fg-", netns, re.M), netns
        assert subprocess.run([SAILCTL, "status"], env=env, capture_output=True).returncode == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run([SAILCTL, "down"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
