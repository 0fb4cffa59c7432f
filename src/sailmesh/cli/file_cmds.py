"""`sailctl apply|create|replace|delete -f`: read the inputs and let the running daemon
validate and store them, as kubectl lets the API server; without a daemon, apply them here
with the same code (`store.applying`), so the output and exit code are the same either way.

On its way to the daemon these commands import click, json and a socket, never the resource
models, pydantic, yaml or the store: every change's latency includes the CLI's start-up, and
meshd has those imported already (tests/architecture/test_cli_startup.py). What the daemon
does not take (`create namespace|secret|...`, `delete KIND NAME`, client dry runs, `-o` with
a dry run) is done by `config_cmds`, imported only then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from sailmesh.cli.common import daemon_call, namespace_option, print_report
from sailmesh.meshd import control
from sailmesh.sources import Source, read_sources

# Storing a large input and starting its pods before the sync answers takes longer than the
# control socket's usual 30 s at a thousand objects; a daemon that does not answer at all
# still ends the command.
APPLY_TIMEOUT_S = 120.0

_files = click.option("-f", "--filename", "files", multiple=True,
                      help="File, directory or - (stdin) with the resources.")
_dry_run = click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
                        help="Check against the stored objects and change nothing (server: the"
                             " running daemon checks).")


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="File, directory or - (stdin) with the resources.")
@namespace_option
@click.option("-l", "--selector", default=None,
              help="Apply only the objects whose labels match, e.g. service=helloworld.")
@_dry_run
@click.option("-o", "--output", default=None)
def apply(files: tuple[str, ...], namespace: str | None, selector: str | None, dry_run: str,
          output: str | None) -> None:
    """Apply configuration from files or stdin (validated whole; nothing changes on error)."""
    if dry_run != "none" and output is not None:
        from sailmesh.cli import config_cmds  # printed from the models: done here

        config_cmds.print_dry_run(read_sources(files), namespace, selector, output)
        return
    run_files("apply", files, namespace, selector=selector, dry_run=dry_run)


class _CreateGroup(click.Group):
    """`create -f` is light; `create namespace|secret|configmap|route|role...` are
    `config_cmds.create_kinds`' commands, imported when one is named."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return _create_kinds().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return _create_kinds().get_command(ctx, cmd_name)


def _create_kinds() -> click.Group:
    from sailmesh.cli import config_cmds

    return config_cmds.create_kinds


@click.group(cls=_CreateGroup, invoke_without_command=True)
@click.option("-f", "--filename", "files", multiple=True, help="Create from files (kubectl create -f).")
@namespace_option
@_dry_run
@click.pass_context
def create(ctx: click.Context, files: tuple[str, ...], namespace: str | None, dry_run: str) -> None:
    """Create a resource (namespace, secret, configmap) or from a file with -f."""
    if ctx.invoked_subcommand is not None:
        return
    if not files:
        click.echo(ctx.get_help())
        return
    run_files("create", files, namespace, dry_run=dry_run)


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="File, directory or - (stdin) with the resources.")
@namespace_option
@_dry_run
def replace(files: tuple[str, ...], namespace: str | None, dry_run: str) -> None:
    """Replace existing resources (like `kubectl replace -f`); all must exist, or nothing
    changes."""
    run_files("replace", files, namespace, dry_run=dry_run)


@click.command()
@click.argument("args", nargs=-1)
@_files
@namespace_option
@click.option("-l", "--selector", default=None, help="Delete every object the selector matches.")
@click.option("--all", "delete_all", is_flag=True)
@click.option("--ignore-not-found", is_flag=True)
@click.option("--wait/--no-wait", default=True, help="Accepted for kubectl compatibility.")
@click.option("--grace-period", type=int, default=None, help="Accepted for kubectl compatibility.")
@click.option("--now", is_flag=True, help="Accepted for kubectl compatibility.")
@click.option("--force", is_flag=True, help="Accepted for kubectl compatibility.")
@_dry_run
def delete(args: tuple[str, ...], files: tuple[str, ...], namespace: str | None,
           selector: str | None, delete_all: bool, ignore_not_found: bool, wait: bool,
           grace_period: int | None, now: bool, force: bool, dry_run: str) -> None:
    """Delete resources by file (-f), `KIND NAME...`, `KIND/NAME...`, `KIND -l SELECTOR` or
    `KIND --all`; pods are stopped and their Deployments start new ones."""
    if files:
        run_files("delete", files, namespace, selector=selector, ignore_not_found=ignore_not_found,
                  dry_run=dry_run)
        return
    if dry_run != "none":
        raise click.UsageError("--dry-run is taken with -f only")
    from sailmesh.cli import config_cmds

    config_cmds.delete_named(args, namespace, selector, delete_all, ignore_not_found)


def run_files(verb: str, files: Sequence[str], namespace: str | None, **options: Any) -> None:
    """`<verb> -f`: through the daemon when one runs, else here (and a client dry run
    always here, as kubectl's); print its report, exit with its code."""
    sources = read_sources(files)
    local = options.get("dry_run") == "client"
    reply = None if local else _through_daemon(verb, sources, namespace, options)
    if reply is None:
        from sailmesh.cli import config_cmds  # the models and the store: only without a daemon

        config_cmds.run_files_here(verb, sources, namespace, options)
        return
    print_report(reply["lines"], reply["code"])


def _through_daemon(verb: str, sources: Sequence[Source], namespace: str | None,
                    options: dict[str, Any]) -> dict[str, Any] | None:
    """The daemon's report, or None when no daemon runs or the input is too large to send
    in one request (then it is applied here, as it was before the daemon took applies)."""
    try:
        return daemon_call(verb, sources=[s.as_json() for s in sources], namespace=namespace,
                           timeout=APPLY_TIMEOUT_S, **options)
    except control.RequestTooLarge:
        return None
