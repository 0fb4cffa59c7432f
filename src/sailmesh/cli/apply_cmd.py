"""`sailctl apply -f`: read the inputs and let the running daemon apply them, as kubectl lets
the API server; without a daemon, or for `--dry-run`, apply them here with the same code
(`store.applying`), so the output and exit code are the same either way.

On its way to the daemon this command imports click, json and a socket, never the resource
models, pydantic, yaml or the store: every apply's latency includes the CLI's start-up, and
meshd has those imported already (tests/architecture/test_cli_startup.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from sailmesh.cli.common import daemon_call, namespace_option, print_report
from sailmesh.meshd import control
from sailmesh.sources import Source, read_sources


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="File, directory or - (stdin) with the resources.")
@namespace_option
@click.option("-l", "--selector", default=None,
              help="Apply only the objects whose labels match, e.g. service=helloworld.")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", default=None)
def apply(files: tuple[str, ...], namespace: str | None, selector: str | None, dry_run: str,
          output: str | None) -> None:
    """Apply configuration from files or stdin (validated whole; nothing changes on error)."""
    sources = read_sources(files)
    if dry_run == "none":
        reply = _through_daemon(sources, namespace, selector)
        if reply is not None:
            print_report(reply["lines"], reply["code"])
            return
    from sailmesh.cli import config_cmds  # the models and the store: only without a daemon

    config_cmds.apply_here(sources, namespace, selector, dry_run, output)


def _through_daemon(sources: Sequence[Source], namespace: str | None,
                    selector: str | None) -> dict[str, Any] | None:
    """The daemon's report, or None when no daemon runs or the input is too large to send
    in one request (then it is applied here, as it was before the daemon took applies)."""
    try:
        return daemon_call("apply", sources=[s.as_json() for s in sources], namespace=namespace,
                           selector=selector)
    except control.RequestTooLarge:
        return None
