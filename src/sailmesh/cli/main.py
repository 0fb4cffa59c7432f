"""`sailctl`: the command line of sailmesh, with kubectl's and istioctl's conventions.

Commands are imported only when run: `apply` must not pay for the Envoy protobufs that
`analyze` needs, since every apply's latency includes the CLI's start-up.
"""

from __future__ import annotations

import importlib
import sys

import click

from sailmesh import __version__
from sailmesh.cli.common import bool_flag_values, hoist_global_flags

# name → "module:attribute", in the order `sailctl --help` lists them.
COMMANDS = {
    "up": "mesh_cmds:up",
    "down": "mesh_cmds:down",
    "status": "mesh_cmds:status",
    "env": "mesh_cmds:env_cmd",
    "apply": "file_cmds:apply",
    "replace": "file_cmds:replace",
    "create": "file_cmds:create",
    "expose": "config_cmds:expose",
    "delete": "file_cmds:delete",
    "get": "get_cmd:get",
    "describe": "describe_cmd:describe",
    "label": "file_cmds:label",
    "annotate": "file_cmds:annotate",
    "patch": "workload_cmds:patch",
    "scale": "workload_cmds:scale",
    "rollout": "workload_cmds:rollout",
    "wait": "workload_cmds:wait_cmd",
    "install": "istioctl_cmds:install",
    "kube-inject": "istioctl_cmds:kube_inject",
    "proxy-status": "istioctl_cmds:proxy_status",
    "ps": "istioctl_cmds:proxy_status",
    "version": "istioctl_cmds:version",
    "logs": "pod_cmds:logs",
    "exec": "pod_cmds:exec_cmd",
    "proxy-config": "proxy_config:proxy_config",
    "pc": "proxy_config:proxy_config",
    "analyze": "analyze_cmd:analyze",
    "ca": "ca_cmd:ca",
    "router": "router_cmds:router",
    "x": "x_cmds:x",
    "dashboard": "dashboard:dashboard",
    "unit": "unit_cmd:unit",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"sailmesh.cli.{module}"), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        return name, command, bool_flag_values(command, rest) if command else rest


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sailctl")
def cli() -> None:
    """sailmesh: Istio's traffic security on real Envoy proxies, on this machine.

    Flags -n/--namespace and -A may come before or after the command, as with kubectl.
    """


def main() -> None:
    cli.main(args=hoist_global_flags(sys.argv[1:]), prog_name="sailctl")


if __name__ == "__main__":
    main()
