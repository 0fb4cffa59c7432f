"""`sailctl unit`: run the control plane as a systemd service (meshd.unit).

`install` writes /etc/systemd/system/sailmesh.service for this mesh (SAILMESH_HOME) and,
when the host runs systemd, enables it (and starts it unless a mesh already runs under its
own keeper); `show` prints the unit; `uninstall` disables and removes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from sailmesh.cli.common import home
from sailmesh.cli.output import fail
from sailmesh.meshd.unit import UNIT_DIR, installed_unit, systemd_running, unit_name, unit_text


def _systemctl(*args: str) -> None:
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        fail(f"systemctl {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")


@click.group()
def unit() -> None:
    """Run the control plane as a systemd service that restarts it (Restart=always)."""


@unit.command()
def show() -> None:
    """Print the unit file `install` would write for this mesh."""
    click.echo(unit_text(home(), sys.executable, os.environ), nl=False)


@unit.command()
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path), default=UNIT_DIR,
              show_default=True, help="Where to write the unit file.")
def install(unit_dir: Path) -> None:
    """Write the systemd unit of this mesh and enable it when systemd runs."""
    from sailmesh.cli.mesh_cmds import keeper_pid

    if os.geteuid() != 0:
        fail("sailctl unit install needs root: the mesh runs as root")
    h = home()
    h.run.mkdir(parents=True, exist_ok=True)
    path = unit_dir / unit_name(h)
    unit_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(unit_text(h, sys.executable, os.environ))
    click.echo(f"unit {path} written")
    if not systemd_running():
        click.echo(f"systemd is not running on this host: enable it once it does with "
                   f"`systemctl enable --now {unit_name(h)}`; until then `sailctl up` keeps the "
                   "control plane under its own keeper")
        return
    _systemctl("daemon-reload")
    if keeper_pid() is not None:
        _systemctl("enable", unit_name(h))
        click.echo(f"{unit_name(h)} enabled; the running mesh stays under its current keeper "
                   "until `sailctl down`, then `sailctl up` starts it through systemd")
        return
    _systemctl("enable", "--now", unit_name(h))
    click.echo(f"{unit_name(h)} enabled and started")


@unit.command()
@click.option("--unit-dir", type=click.Path(file_okay=False, path_type=Path), default=UNIT_DIR,
              show_default=True, help="Where the unit file is.")
def uninstall(unit_dir: Path) -> None:
    """Disable and remove the systemd unit of this mesh (the mesh keeps running)."""
    h = home()
    path = installed_unit(h, unit_dir)
    if path is None:
        fail(f"no unit {unit_dir / unit_name(h)}")
    if systemd_running():
        _systemctl("disable", unit_name(h))
    path.unlink()
    if systemd_running():
        _systemctl("daemon-reload")
    click.echo(f"unit {path} removed")
