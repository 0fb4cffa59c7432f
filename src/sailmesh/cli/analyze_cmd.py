"""`sailctl analyze`: find TLS and routing mistakes in the stored config and/or files.

Owns: the edge of analysis: reading the store and the files, the clock (`--now` overrides
it), namespace selection, istioctl-style output and the exit status (1 when any Error).
The checks themselves live in `sailmesh.analysis` and never see this module.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from sailmesh.analysis.catalogue import analyze as run_analyzers
from sailmesh.analysis.context import build_context, layer, with_builtin_gateways
from sailmesh.cli.common import all_namespaces_option, home, namespace_option
from sailmesh.cli.output import emit, fail
from sailmesh.resources.errors import ResourceError
from sailmesh.resources.loader import load_paths
from sailmesh.store import Snapshot, Store, StoreError


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        now = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint="--now") from None
    return now if now.tzinfo else now.replace(tzinfo=UTC)


@click.command()
@click.option("-f", "--filename", "files", multiple=True,
              help="File, directory or - (stdin) analyzed as if applied over the stored config.")
@namespace_option
@all_namespaces_option
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default=None,
              help="Print the messages as yaml or json.")
@click.option("--now", "now_text", default=None, metavar="ISO",
              help="Judge certificate validity at this time (default: now).")
def analyze(files: tuple[str, ...], namespace: str | None, all_namespaces: bool,
            output: str | None, now_text: str | None) -> None:
    """Analyze configuration for TLS mistakes (like `istioctl analyze`); exit 1 on Error."""
    now = _parse_now(now_text)
    try:
        stored = Store(home().root).list()
    except StoreError as exc:
        fail(str(exc))
    added = []
    if files:
        try:
            # Not `namespace`: -n picks what to report on, files keep their own namespaces.
            result = load_paths(list(files), None)
        except ResourceError as exc:
            for p in exc.problems:
                click.echo(f"error: {p}" if p.is_error else str(p), err=True)
            sys.exit(1)
        added = list(result.resources)
    snapshot = Snapshot.of(with_builtin_gateways(layer(stored, added, now)))
    if all_namespaces:
        namespaces: list[str] | None = None
    elif namespace:
        namespaces = [namespace]
    elif added:
        namespaces = sorted({r.namespace for r in added if r.namespace})
    else:
        namespaces = ["default"]
    messages = run_analyzers(build_context(snapshot, now), namespaces)
    if output:
        emit([m.as_dict() for m in messages], output)
    elif messages:
        for m in messages:
            click.echo(m.line())
    else:
        if namespaces is None:
            where = "all namespaces"
        else:
            where = ("namespace: " if len(namespaces) == 1 else "namespaces: ") + ", ".join(
                namespaces)
        click.echo(f"\u2714 No validation issues found when analyzing {where}.")
    if any(m.level == "Error" for m in messages):
        sys.exit(1)
