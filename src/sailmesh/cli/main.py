"""`sailctl`: the command line of sailmesh, with kubectl's and istioctl's conventions."""

from __future__ import annotations

import sys

import click

from sailmesh import __version__
from sailmesh.cli.analyze_cmd import analyze
from sailmesh.cli.common import hoist_global_flags
from sailmesh.cli.config_cmds import apply, create, delete, get, install, label
from sailmesh.cli.mesh_cmds import down, env_cmd, exec_cmd, logs, status, up
from sailmesh.cli.proxy_config import proxy_config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sailctl")
def cli() -> None:
    """sailmesh: Istio's traffic security on real Envoy proxies, on this machine.

    Flags -n/--namespace and -A may come before or after the command, as with kubectl.
    """


for command, name in (
    (up, "up"), (down, "down"), (status, "status"), (env_cmd, "env"),
    (apply, "apply"), (create, "create"), (delete, "delete"), (get, "get"), (label, "label"),
    (install, "install"), (logs, "logs"), (exec_cmd, "exec"), (proxy_config, "proxy-config"),
    (analyze, "analyze"),
):
    cli.add_command(command, name)
cli.add_command(proxy_config, "pc")


def main() -> None:
    cli.main(args=hoist_global_flags(sys.argv[1:]), prog_name="sailctl")


if __name__ == "__main__":
    main()
