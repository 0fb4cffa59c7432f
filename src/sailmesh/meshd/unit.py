"""The control plane as a systemd service: the unit file that runs the keeper (meshd.keeper).

systemd restarts the keeper if it dies (Restart=always, after RESTART_SEC); the keeper
restarts meshd within a second; a new meshd adopts the running pods. Only the keeper is
signalled and replaced (KillMode=process): pods, proxies and a meshd that outlived its keeper
keep running, and the next keeper watches that meshd instead of starting a second one.
`sailctl down` ends the keeper with status 0, which is a stop, not a crash
(RestartPreventExitStatus=0); `systemctl stop` does the same as `sailctl down`.

The unit carries the mesh's environment (SAILMESH_* and PATH) and appends the keeper's and
meshd's output to the mesh's log (run/meshd.log), as `sailctl up` does.
Must not know: what meshd does. `unit_text` is pure; the rest only looks at files.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from sailmesh.meshd.paths import Home

UNIT_DIR = Path("/etc/systemd/system")
RESTART_SEC = "200ms"
# Environment the control plane reads; carried into the unit from the installing shell.
CARRIED_ENV = ("PATH", "PYTHONPATH")


def unit_name(home: Home) -> str:
    """`sailmesh.service` for the default instance, else `sailmesh-<instance>.service`."""
    return "sailmesh.service" if home.instance == "sm" else f"sailmesh-{home.instance}.service"


def unit_environment(home: Home, env: Mapping[str, str]) -> dict[str, str]:
    """What the keeper and meshd see: this mesh's home and instance, every other SAILMESH_*
    setting of `env`, and its PATH and PYTHONPATH."""
    out = {k: v for k, v in sorted(env.items()) if k.startswith("SAILMESH_") or k in CARRIED_ENV}
    out.update(SAILMESH_HOME=str(home.root), SAILMESH_INSTANCE=home.instance)
    return out


def unit_text(home: Home, python: str, env: Mapping[str, str]) -> str:
    """The unit file of the mesh in `home`, run by the interpreter `python` (the one
    sailmesh is installed in)."""
    keeper = [python, "-P", "-m", "sailmesh.meshd.keeper", str(home.keeper_pid_file)]
    # The shell makes run/ (and so the log's directory) first, then becomes the keeper.
    script = (f"mkdir -p {shlex.quote(str(home.run))} && exec {shlex.join(keeper)} "
              f">>{shlex.quote(str(home.log_file))} 2>&1")
    environment = " ".join(_quoted(f"{k}={v}", expands=False)
                           for k, v in unit_environment(home, env).items())
    return f"""\
# Written by `sailctl unit install`: the control plane of the mesh in {home.root}.
[Unit]
Description=sailmesh control plane ({_escaped(str(home.root), expands=False)})
After=network.target
# Never give up restarting it.
StartLimitIntervalSec=0

[Service]
Type=simple
WorkingDirectory=/
Environment={environment}
ExecStart=/bin/sh -c {_quoted(script)}
Restart=always
RestartSec={RESTART_SEC}
RestartPreventExitStatus=0
KillMode=process
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
"""


def _escaped(text: str, *, expands: bool = True) -> str:
    """`text` with systemd's specifiers (%) made literal, and its variable expansion ($) where
    the setting `expands` (ExecStart= does, Environment= and Description= do not)."""
    text = text.replace("%", "%%")
    return text.replace("$", "$$") if expands else text


def _quoted(text: str, *, expands: bool = True) -> str:
    """One double-quoted word of a unit file's command line or Environment= list."""
    return '"' + _escaped(text, expands=expands).replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_running() -> bool:
    """Whether this host was booted with systemd (sd_booted(3))."""
    return Path("/run/systemd/system").is_dir()


def installed_unit(home: Home, unit_dir: Path = UNIT_DIR) -> Path | None:
    """The unit file of this mesh, if `sailctl unit install` wrote one."""
    path = unit_dir / unit_name(home)
    return path if path.is_file() else None
