"""`sailctl analyze`: find TLS and routing mistakes in the stored config and/or files.

Owns: the edge of analysis: reading the store and the files (any Kubernetes kinds; kinds
sailmesh does not model are skipped, Pods among them lend their labels; read tolerantly:
what does not parse or fit the schema becomes a message and the rest is analyzed, so that
`analyze` never refuses input that istioctl analyze accepts), the clock (`--now`
overrides it), namespace selection, `--suppress`, thresholds, `file:line` of messages about
resources read from files, istioctl-style output and the exit status.
The checks themselves live in `sailmesh.analysis` and never see this module.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from sailmesh.analysis.catalogue import analyze as run_analyzers
from sailmesh.analysis.context import build_context, layer, with_builtin_gateways
from sailmesh.analysis.messages import (
    LEVEL_ORDER,
    Message,
    Suppression,
    at_least,
    ref_namespace,
    suppress,
)
from sailmesh.cli.common import all_namespaces_option, home, namespace_option
from sailmesh.cli.output import emit, fail
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.errors import Problem
from sailmesh.resources.loader import Origin, load_paths
from sailmesh.store import Store, StoreError


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        now = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint="--now") from None
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _parse_suppressions(values: tuple[str, ...]) -> list[Suppression]:
    try:
        return [Suppression.parse(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--suppress") from None


LEVELS = click.Choice(list(LEVEL_ORDER), case_sensitive=False)


@click.command()
@click.option("-f", "--filename", "files", multiple=True,
              help="File, directory (recursive) or - (stdin) analyzed as if applied over the "
                   "stored config. Any Kubernetes kinds; those not used are skipped.")
@namespace_option
@all_namespaces_option
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default=None,
              help="Print the messages as yaml or json.")
@click.option("-S", "--suppress", "suppressions", multiple=True, metavar="CODE=Kind ns/name",
              help='Hide messages: a code (IST or SM) and a resource glob, e.g. '
                   '"IST0101=Gateway test/*" or "SM0106=*". Repeatable.')
@click.option("--failure-threshold", default="Error", type=LEVELS, show_default=True,
              help="Exit 1 when a message of this level or higher is found.")
@click.option("--output-threshold", default="Info", type=LEVELS, show_default=True,
              help="Print messages of this level or higher.")
@click.option("--now", "now_text", default=None, metavar="ISO",
              help="Judge certificate validity at this time (default: now).")
def analyze(files: tuple[str, ...], namespace: str | None, all_namespaces: bool,
            output: str | None, suppressions: tuple[str, ...], failure_threshold: str,
            output_threshold: str, now_text: str | None) -> None:
    """Analyze configuration for TLS mistakes (like `istioctl analyze`).

    Codes are Istio's (IST0101 …) where istioctl has the same check, with sailmesh's SM code
    at the end of the line; the other checks have SM codes only (docs/analyze-codes.md).
    """
    now = _parse_now(now_text)
    rules = _parse_suppressions(suppressions)
    failure_threshold = failure_threshold.capitalize()
    output_threshold = output_threshold.capitalize()
    try:
        stored = Store(home().root).list()
    except StoreError as exc:
        fail(str(exc))
    added = []
    origins: dict[tuple[str, str, str], Origin] = {}
    pods: list[dict] = []
    problems: tuple[Problem, ...] = ()
    if files:
        # Not `namespace`: -n picks what to report on, files keep their own namespaces.
        result = load_paths(list(files), None, recursive=True, skip_unknown_kinds=True,
                            tolerant=True)
        added = list(result.resources)
        origins = result.origins
        pods = [s.data for s in result.skipped if s.kind == "Pod"]
        problems = result.errors
    snapshot = Snapshot.of(with_builtin_gateways(layer(stored, added, now)))
    if all_namespaces:
        namespaces: list[str] | None = None
    elif namespace:
        namespaces = [namespace]
    elif added or problems:
        namespaces = sorted({r.namespace for r in added if r.namespace}
                            | {ref_namespace(p.ref) for p in problems if p.ref}) or ["default"]
    else:
        namespaces = ["default"]
    found = run_analyzers(build_context(snapshot, now, pods, problems), namespaces)
    found = [_locate(m, origins) for m in suppress(found, rules)]
    messages = at_least(found, output_threshold)
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
    if at_least(found, failure_threshold):
        sys.exit(1)


def _locate(m: Message, origins: dict[tuple[str, str, str], Origin]) -> Message:
    """`file:line` of the message's field, when its resource was read from a file (messages
    about the files themselves carry theirs already)."""
    origin = origins.get(m.key)
    return m.located(origin.where(m.field)) if origin is not None and not m.origin else m
