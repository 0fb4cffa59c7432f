"""`get`, as kubectl has it: `get KIND[,KIND…] [NAME…]`, `get KIND/NAME…`, `get all`, with
`-l`, `-A`, `-o …`, `--show-labels`, `--no-headers`, `--ignore-not-found`.

kubectl facts: several kinds print one table each, names prefixed `kind/` ; an empty table
prints "No resources found in NS namespace." (or "No resources found" with -A) on stderr
and exits 0; a missing NAME prints `Error from server (NotFound): …` and exits 1 after
printing what was found; one object printed with -o json/yaml/jsonpath is the object itself,
more (or a selector) a List.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from sailmesh.cli.cluster_view import (
    ALL_CATEGORY,
    ClusterView,
    UnknownKind,
    namespaced,
    resolve_kind,
    status_pods,
    type_name,
)
from sailmesh.cli.common import all_namespaces_option, home, namespace_option
from sailmesh.cli.output import fail
from sailmesh.cli.printers import PrinterError, parse_output, render, tables
from sailmesh.resources.selectors import label_selector_matches


def targets(args: Sequence[str]) -> list[tuple[str, list[str]]]:
    """`KIND NAME…`, `KIND,KIND`, `KIND/NAME KIND/NAME…` → [(kind, names)]."""
    if not args:
        fail("You must specify the type of resource to get. Use \"sailctl api-resources\" for a complete"
             " list of supported resources.")
    try:
        if "/" in args[0]:
            out: list[tuple[str, list[str]]] = []
            for a in args:
                kind, sep, name = a.partition("/")
                if not sep or not name:
                    fail("there is no need to specify a resource type as a separate argument when"
                         " passing arguments in resource/name form (e.g. 'sailctl get"
                         " resource/<resource_name>' instead of 'sailctl get resource"
                         f" resource/<resource_name>'): {a}")
                out.append((resolve_kind(kind), [name]))
            return out
        kinds: list[str] = []
        for k in args[0].split(","):
            kinds.extend(ALL_CATEGORY if k == "all" else [resolve_kind(k)])
        return [(k, list(args[1:])) for k in kinds]
    except UnknownKind as exc:
        fail(str(exc))


def select(view: ClusterView, wanted: list[tuple[str, list[str]]], namespace: str | None,
           selector: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The objects asked for, and a NotFound message per missing name."""
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for kind, names in wanted:
        objs = [o for o in view.objects(kind, namespace)
                if label_selector_matches(o["metadata"].get("labels") or {}, selector)]
        objs.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        if not names:
            found.extend(objs)
            continue
        by_name = {o["metadata"]["name"]: o for o in objs}
        for n in names:
            if n in by_name:
                found.append(by_name[n])
            else:
                missing.append(f'Error from server (NotFound): {_plural(kind)} "{n}" not found')
    return found, missing


def _plural(kind: str) -> str:
    """kubectl's `pods`, `deployments.apps`, `gateways.networking.istio.io` in errors."""
    group = type_name(kind).partition(".")[2]
    plural = kind.lower() + ("es" if kind.lower().endswith(("s", "ss")) else "s")
    return f"{plural}.{group}" if group else plural


def needs_mesh(wanted: list[tuple[str, list[str]]]) -> bool:
    return any(k in ("Pod", "ReplicaSet", "Deployment", "Service", "Route") for k, _ in wanted)


@click.command()
@click.argument("args", nargs=-1, required=False)
@namespace_option
@all_namespaces_option
@click.option("-o", "--output", default=None,
              help="json|yaml|name|wide|jsonpath=…|jsonpath-file=…|custom-columns=…")
@click.option("-l", "--selector", default=None, help="Label selector, e.g. app=httpbin,version!=v2")
@click.option("--show-labels", is_flag=True, help="Show all labels as the last column.")
@click.option("--no-headers", is_flag=True, help="Print tables without their header line.")
@click.option("--ignore-not-found", is_flag=True, help="A missing NAME is not an error.")
def get(args: tuple[str, ...], namespace: str | None, all_namespaces: bool, output: str | None,
        selector: str | None, show_labels: bool, no_headers: bool, ignore_not_found: bool) -> None:
    """Display resources (kubectl get), including pods and replicasets of the running mesh."""
    try:
        fmt = parse_output(output)
    except PrinterError as exc:
        fail(str(exc))
    wanted = targets(args)
    view = ClusterView.read(home(), live=needs_mesh(wanted))
    ns = None if all_namespaces else (namespace or "default")
    items, missing = select(view, wanted, ns, selector)
    named = any(names for _, names in wanted)
    for m in missing if not ignore_not_found else []:
        click.echo(m, err=True)
    if not fmt.is_table:
        single = named and len(items) == 1 and len(wanted) == 1 and len(wanted[0][1]) == 1
        try:
            click.echo(render(items, fmt, single=single, no_headers=no_headers), nl=False)
        except PrinterError as exc:
            fail(str(exc))
    elif items:
        raw = {(p["namespace"], p["name"]): p for p in status_pods(view.status)}
        kinds = {k for k, _ in wanted}
        click.echo(tables(items, wide=fmt.name == "wide",
                          with_namespace=all_namespaces and any(namespaced(k) for k in kinds),
                          with_kind=len(kinds) > 1,
                          show_labels=show_labels, no_headers=no_headers, raw_pods=raw))
    elif not missing:
        scoped = ns is not None and any(namespaced(k) for k, _ in wanted)
        click.echo(f"No resources found in {ns} namespace." if scoped else "No resources found",
                   err=True)
    if missing and not ignore_not_found:
        sys.exit(1)
