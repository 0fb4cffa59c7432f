"""The control plane's systemd unit (meshd.unit, `sailctl unit`) and the keeper it runs.

The unit is checked as systemd reads it (`systemd-analyze verify`, when installed) and field
by field; its ExecStart, read back with systemd's quoting, runs the keeper of this mesh
even for a state directory whose name holds spaces, quotes, `%` or `$`. The keeper's
adoption of a meshd that outlived its keeper is checked here without a mesh (a stand-in
process); tests/e2e/test_control_plane_heals.py checks it with a real one.
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sailmesh.meshd.paths import Home
from sailmesh.meshd.unit import unit_name, unit_text

SAILCTL = str(Path(sys.executable).parent / "sailctl")


def parse_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def unit_words(value: str) -> list[str]:
    """A command line or Environment= list as systemd splits it, specifiers and `$$` undone."""
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(value)]


def test_unit_restarts_the_keeper_at_once_and_leaves_pods_alone(tmp_path: Path) -> None:
    home = Home(tmp_path / "mesh", "t7")
    unit = parse_unit(unit_text(home, "/opt/venv/bin/python3", {"PATH": "/usr/bin:/bin",
                                                           "HOME": "/root",
                                                           "SAILMESH_APPS_DOMAIN": "apps.test"}))
    service = unit["Service"]
    assert service["Restart"] == "always"
    assert service["RestartSec"] == "200ms"
    assert service["RestartPreventExitStatus"] == "0"  # `sailctl down` is a stop
    assert service["KillMode"] == "process"  # pods and proxies outlive a keeper
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    env = dict(w.split("=", 1) for w in unit_words(service["Environment"]))
    assert env == {"PATH": "/usr/bin:/bin", "SAILMESH_APPS_DOMAIN": "apps.test",
                   "SAILMESH_HOME": str(home.root), "SAILMESH_INSTANCE": "t7"}
    sh, flag, script = unit_words(service["ExecStart"])
    assert (sh, flag) == ("/bin/sh", "-c")
    assert shlex.split(script) == ["mkdir", "-p", str(home.run), "&&", "exec",
                                   "/opt/venv/bin/python3", "-P", "-m", "sailmesh.meshd.keeper",
                                   str(home.keeper_pid_file), f">>{home.log_file}", "2>&1"]
    assert unit_name(home) == "sailmesh-t7.service"
    assert unit_name(Home(tmp_path, "sm")) == "sailmesh.service"


def test_odd_state_directory_names_survive_systemd_quoting(tmp_path: Path) -> None:
    root = tmp_path / "my mesh's \"state\" 100% $HOME"
    home = Home(root, "sm")
    unit = parse_unit(unit_text(home, sys.executable, {}))
    env = dict(w.split("=", 1) for w in
               [w.replace("%%", "%") for w in shlex.split(unit["Service"]["Environment"])])
    assert env["SAILMESH_HOME"] == str(root)
    script = unit_words(unit["Service"]["ExecStart"])[2]
    # The shell runs it: make run/ and write to the log there (the keeper replaced by echo).
    probe = script.replace(f"exec {shlex.quote(sys.executable)}", "exec echo")
    subprocess.run(["/bin/sh", "-c", probe], check=True)
    assert home.log_file.read_text() == f"-P -m sailmesh.meshd.keeper {home.keeper_pid_file}\n"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    env = {**os.environ, "SAILMESH_HOME": str(tmp_path / "home"), "SAILMESH_INSTANCE": "t8"}
    done = subprocess.run([SAILCTL, "unit", "install", "--unit-dir", str(tmp_path / "units")],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "units" / "sailmesh-t8.service"
    verify = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                            text=True)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    shown = subprocess.run([SAILCTL, "unit", "show"], env=env, capture_output=True, text=True)
    assert shown.stdout == path.read_text()
    # The check can fail: systemd reports a setting it cannot parse.
    path.write_text(path.read_text().replace("KillMode=process", "KillMode=pods"))
    verify = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                            text=True)
    assert "kill mode" in verify.stderr


def test_keeper_watches_a_meshd_without_keeper_and_ends_with_a_clean_shutdown(
        tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    # A stand-in for a meshd whose keeper died: same command-line word, sleeps.
    meshd = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                              "sailmesh.meshd"])
    (run / "meshd.pid").write_text(f"{meshd.pid}\n")
    keeper = subprocess.Popen([sys.executable, "-P", "-m", "sailmesh.meshd.keeper",
                               str(run / "keeper.pid")], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not (run / "keeper.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert keeper.poll() is None, "the keeper did not wait for the running meshd"
        # A clean shutdown removes meshd's pid file before it exits: nothing to restart.
        (run / "meshd.pid").unlink()
        meshd.kill()
        meshd.wait()
        assert keeper.wait(timeout=10) == 0
        out = keeper.stdout.read()  # type: ignore[union-attr]
        assert f"meshd {meshd.pid} runs without its keeper; watching it" in out
        assert "starting a new one" not in out
        assert not (run / "keeper.pid").exists()
    finally:
        for proc in (keeper, meshd):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
