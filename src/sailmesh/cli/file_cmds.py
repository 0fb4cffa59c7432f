"""`sailctl apply|create|replace|delete -f`, `delete KIND NAME...|-l|--all`, `label` and
`annotate`: send the command as a request to the running daemon, which validates and
stores, as kubectl lets the API server; without a daemon, run the same request here with
the same code (`store.commands`), so the output and exit code are the same either way.

On their way to the daemon these commands import click, json and a socket, never the
resource models, pydantic, yaml or the store: every change's latency includes the CLI's
start-up, and meshd has those imported already (tests/architecture/test_cli_startup.py).
What the daemon does not take (client dry runs, `-o` with a dry run, pods) and
`create namespace|secret|...` (which send the object they build through `submit`) are
`config_cmds`', imported only then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from sailmesh.cli.common import namespace_option
from sailmesh.cli.live_kinds import live_kind
from sailmesh.cli.output import fail
from sailmesh.cli.submit import submit
from sailmesh.sources import read_sources
from sailmesh.sources.targets import named_targets

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
        if dry_run != "none":  # never create for real what was meant as a dry run
            raise click.UsageError(f"--dry-run goes after the kind: create {ctx.invoked_subcommand}"
                                   f" ... --dry-run={dry_run}")
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
    named = {"args": list(args), "namespace": namespace, "selector": selector, "all": delete_all,
             "ignore_not_found": ignore_not_found, "dry_run": dry_run}
    if any(live_kind(kind) for kind, _names in named_targets(args)):
        from sailmesh.cli import config_cmds  # pods belong to the running mesh

        config_cmds.delete_with_pods(named)
        return
    submit("delete_named", **named)


def _metadata_edit(op: str, what: str) -> click.Command:
    """`label` and `annotate`: `KIND NAME k=v k2-` or `KIND/NAME k=v`."""

    @click.command(op)
    @click.argument("args", nargs=-1, required=True)
    @namespace_option
    @click.option("--overwrite", is_flag=True,
                  help=f"Change a {what} that has another value (refused without).")
    @_dry_run
    def command(args: tuple[str, ...], namespace: str | None, overwrite: bool, dry_run: str) -> None:
        kind = args[0].partition("/")[0]
        if live_kind(kind):
            fail(f"{kind} are not stored objects: they belong to the running mesh")
        submit(op, args=list(args), namespace=namespace, overwrite=overwrite, dry_run=dry_run)

    command.help = (f"Update the {what}s of a resource: `{op} KIND NAME k=v k2-` (or KIND/NAME;"
                    " `k-` removes k).")
    return command


label = _metadata_edit("label", "label")
annotate = _metadata_edit("annotate", "annotation")


def run_files(verb: str, files: Sequence[str], namespace: str | None, **options: Any) -> None:
    """`<verb> -f`: the inputs' text, sent as the request `verb`."""
    sources = read_sources(files)
    submit(verb, sources=[s.as_json() for s in sources], namespace=namespace, **options)
