"""Configuration commands, as kubectl has them: `create <kind>`, `delete KIND NAME`, label,
and `apply|create|replace|delete -f` when no daemon runs (`file_cmds` sends those to the
daemon otherwise).

Every write goes through the loader (validation, file:line errors) and then the store as one
transaction (`store.applying`, which the daemon's `-f` operations run too); when the mesh
runs, the daemon is asked to sync and its diagnostics and the proxies' acceptance are
reported before the command returns.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from sailmesh.cli import cluster_view
from sailmesh.cli.cluster_view import resource_dict, type_name
from sailmesh.cli.common import (
    daemon_call,
    home,
    namespace_option,
    print_report,
)
from sailmesh.cli.output import emit, fail
from sailmesh.cli.rbac_cmds import rbac_commands
from sailmesh.cli.route_cmds import route_commands
from sailmesh.resources.base import Resource
from sailmesh.resources.errors import ResourceError
from sailmesh.resources.kinds import KINDS
from sailmesh.resources.loader import load_object
from sailmesh.resources.selectors import label_selector_matches
from sailmesh.sources import Source
from sailmesh.store import Outcome, Store, StoreError, applying


def _store() -> Store:
    return Store(home().root)


def _report_problems(exc: ResourceError) -> NoReturn:
    """The loader's problems, as `apply` prints them, and exit 1."""
    report = applying.Report()
    applying.report_problems(exc, report)
    print_report(report.lines, report.code)
    sys.exit(1)


def write(resources: Sequence[Resource], *, create_only: bool = False, verb: str = "") -> None:
    """Store `resources` as one transaction, print kubectl's lines and the mesh's answer."""
    report = applying.Report()
    applying.write(_store(), resources, report, create_only=create_only, verb=verb)
    if report.written:
        applying.confirm(report, daemon_call("sync"))
    print_report(report.lines, report.code)


def _sync_and_report(outcomes: Sequence[Outcome]) -> None:
    report = applying.Report(refs=[o.ref for o in outcomes])
    applying.confirm(report, daemon_call("sync"))
    print_report(report.lines, report.code)


def run_files_here(verb: str, sources: Sequence[Source], namespace: str | None,
                   options: dict[str, Any]) -> None:
    """`apply|create|replace|delete -f` without a daemon (`file_cmds` sends them to the
    daemon otherwise): the daemon's flow, on the store here."""
    report = applying.run_files(_store(), verb, sources, namespace, **options)  # type: ignore[arg-type]
    if report.written:
        applying.confirm(report, daemon_call("sync"))
    print_report(report.lines, report.code)


def print_dry_run(sources: Sequence[Source], namespace: str | None, selector: str | None,
                  output: str | None) -> None:
    """`apply --dry-run=client`, or a dry run with `-o`: the validated objects, printed."""
    report = applying.Report()
    loaded = applying.load(sources, namespace, report)
    print_report(report.lines, report.code)
    if loaded is None:
        sys.exit(1)
    resources = [r for r in loaded.resources if label_selector_matches(r.metadata.labels, selector)]
    _print_resources(resources, output or "name", dry_run=True)


def delete_named(args: Sequence[str], namespace: str | None, selector: str | None,
                 delete_all: bool, ignore_not_found: bool) -> None:
    """`delete KIND NAME...`, `KIND/NAME...`, `KIND -l SELECTOR`, `KIND --all` (`delete -f`
    is `file_cmds`')."""
    keys: list[tuple[str, str, str]] = []
    for kind, names in _targets(args):
        ns = (namespace or "default") if cluster_view.namespaced(kind) else ""
        if selector is not None or delete_all:
            names = _selected_names(kind, ns, selector)
            if not names:
                click.echo(f"No resources found{f' in {ns} namespace' if ns else ''}.", err=True)
                continue
        elif not names:
            fail("resource(s) were provided, but no name was specified")
        keys.extend((kind, ns, n) for n in names)
    pods = [(ns, name) for kind, ns, name in keys if kind == "Pod"]
    if pods:
        _delete_pods(pods, ignore_not_found)
    stored = [k for k in keys if k[0] != "Pod"]
    if not stored:
        return
    try:
        outcomes = _store().delete(stored, ignore_missing=ignore_not_found)
    except StoreError as exc:
        fail(str(exc))
    for o in outcomes:
        click.echo(f'{type_name(o.kind)} "{o.name}" deleted')
    _sync_and_report(outcomes)


def _selected_names(kind: str, ns: str, selector: str | None) -> list[str]:
    view = cluster_view.ClusterView.read(home(), live=kind == "Pod")
    return [o["metadata"]["name"] for o in view.objects(kind, ns or None)
            if label_selector_matches(o["metadata"].get("labels") or {}, selector)]


def _delete_pods(pods: Sequence[tuple[str, str]], ignore_not_found: bool) -> None:
    reply = daemon_call("delete_pods", pods=[list(p) for p in pods])
    deleted = {tuple(k) for k in (reply or {}).get("deleted", [])}
    missing = False
    for ns, name in pods:
        if (ns, name) in deleted:
            click.echo(f'pod "{name}" deleted')
        elif not ignore_not_found:
            click.echo(f'Error from server (NotFound): pods "{name}" not found', err=True)
            missing = True
    if missing:
        sys.exit(1)


def _targets(args: Sequence[str]) -> list[tuple[str, list[str]]]:
    if not args:
        fail("you must provide one or more resources by argument or filename")
    out: list[tuple[str, list[str]]] = []
    if "/" in args[0]:
        for a in args:
            kind, _, name = a.partition("/")
            out.append((_any_kind(kind), [name]))
        return out
    out.extend((_any_kind(k), list(args[1:])) for k in args[0].split(","))
    return out


def _any_kind(name: str) -> str:
    try:
        return cluster_view.resolve_kind(name)
    except cluster_view.UnknownKind as exc:
        fail(str(exc))


def resolve_kind(name: str) -> str:
    try:
        kind = cluster_view.resolve_kind(name)
    except cluster_view.UnknownKind as exc:
        fail(str(exc))
    if kind not in KINDS:
        fail(f"{name} are not stored objects: they belong to the running mesh")
    return kind


def _print_resources(items: Sequence[Resource], output: str, *, single: bool = False,
                     dry_run: bool = False) -> None:
    if output == "name":
        for r in items:
            suffix = " (dry run)" if dry_run else ""
            click.echo(f"{type_name(r.kind, r.api_version)}/{r.name}{suffix}")
        return
    docs = [resource_dict(r) for r in items]
    data = docs[0] if single or (dry_run and len(docs) == 1) else {
        "apiVersion": "v1", "kind": "List", "items": docs, "metadata": {"resourceVersion": ""}}
    emit(data, output)


# --- label -----------------------------------------------------------------------------


@click.command()
@click.argument("kind_arg", metavar="KIND")
@click.argument("args", nargs=-1, required=True)
@namespace_option
@click.option("--overwrite", is_flag=True)
def label(kind_arg: str, args: tuple[str, ...], namespace: str | None, overwrite: bool) -> None:
    """Update the labels of a resource: `label ns test istio-injection=enabled`, `key-` removes."""
    kind = resolve_kind(kind_arg.split("/")[0])
    if "/" in kind_arg:
        names, changes = [kind_arg.split("/", 1)[1]], list(args)
    else:
        names, changes = [args[0]], list(args[1:])
    if not changes:
        fail("at least one label update is required")
    ns = (namespace or "default") if KINDS[kind].NAMESPACED else ""
    updated = []
    for name in names:
        r = _store().get(kind, ns, name)
        if r is None:
            fail(f'{type_name(kind)} "{name}" not found')
        labels = key_value_changes(r.metadata.labels, changes, overwrite, "label")
        meta = r.metadata.model_copy(update={"labels": labels})
        updated.append(r.model_copy(update={"metadata": meta}))
    write(updated, verb="labeled")


def key_value_changes(current: dict[str, str], changes: Sequence[str], overwrite: bool,
                      what: str) -> dict[str, str]:
    """kubectl's `k=v` (set) and `k-` (remove) arguments of `label` and `annotate`."""
    out = dict(current)
    for c in changes:
        if c.endswith("-") and "=" not in c:
            out.pop(c[:-1], None)
            continue
        k, sep, v = c.partition("=")
        if not sep:
            fail(f"invalid {what} spec: {c}")
        if k in out and out[k] != v and not overwrite:
            fail(f"'{k}' already has a value ({out[k]}), and --overwrite is false")
        out[k] = v
    return out


# --- create ----------------------------------------------------------------------------


def _read_sources(from_files: Sequence[str], literals: Sequence[str]) -> dict[str, bytes]:
    data: dict[str, bytes] = {}
    for spec in from_files:
        key, sep, path = spec.partition("=")
        if not sep:
            key, path = "", spec
        p = Path(path)
        if p.is_dir():
            for f in sorted(p.iterdir()):
                if f.is_file():
                    data[f.name] = f.read_bytes()
            continue
        try:
            data[key or p.name] = p.read_bytes()
        except OSError as exc:
            fail(f"error reading {path}: {exc.strerror}")
    for lit in literals:
        key, sep, value = lit.partition("=")
        if not sep:
            fail(f"invalid literal source {lit}, expected key=value")
        data[key] = value.encode()
    return data


def _created_object(obj: dict[str, Any], namespace: str | None, dry_run: str,
                    output: str | None, verb: str = "created") -> None:
    try:
        resource = load_object(obj, source="<command line>", namespace=namespace)
    except ResourceError as exc:
        _report_problems(exc)
    if dry_run != "none":
        _print_resources([resource], output or "name", single=True, dry_run=True)
        return
    write([resource], create_only=True, verb=verb)


def _b64(data: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in data.items()}


_dry_run = click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
_output = click.option("-o", "--output", default=None)


@click.group()
def create_kinds() -> None:
    """The subcommands of `create` (`file_cmds.create` takes `-f` itself)."""


@create_kinds.command("namespace")
@click.argument("name")
@_dry_run
@_output
def create_namespace(name: str, dry_run: str, output: str | None) -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    _created_object(obj, None, dry_run, output)


create_kinds.add_command(create_namespace, "ns")


@create_kinds.group("secret")
def create_secret() -> None:
    """Create a secret: tls or generic."""


@create_secret.command("tls")
@click.argument("name")
@click.option("--cert", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--key", required=True, type=click.Path(exists=True, dir_okay=False))
@namespace_option
@_dry_run
@_output
def create_secret_tls(name: str, cert: str, key: str, namespace: str | None, dry_run: str,
                      output: str | None) -> None:
    data = {"tls.crt": Path(cert).read_bytes(), "tls.key": Path(key).read_bytes()}
    obj = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
           "metadata": {"name": name}, "data": _b64(data)}
    _created_object(obj, namespace, dry_run, output)


@create_secret.command("generic")
@click.argument("name")
@click.option("--from-file", "from_files", multiple=True)
@click.option("--from-literal", "literals", multiple=True)
@click.option("--type", "secret_type", default="Opaque")
@namespace_option
@_dry_run
@_output
def create_secret_generic(name: str, from_files: tuple[str, ...], literals: tuple[str, ...],
                          secret_type: str, namespace: str | None, dry_run: str,
                          output: str | None) -> None:
    data = _read_sources(from_files, literals)
    obj = {"apiVersion": "v1", "kind": "Secret", "type": secret_type,
           "metadata": {"name": name}, "data": _b64(data)}
    _created_object(obj, namespace, dry_run, output)


@create_kinds.command("configmap")
@click.argument("name")
@click.option("--from-file", "from_files", multiple=True)
@click.option("--from-literal", "literals", multiple=True)
@namespace_option
@_dry_run
@_output
def create_configmap(name: str, from_files: tuple[str, ...], literals: tuple[str, ...],
                     namespace: str | None, dry_run: str, output: str | None) -> None:
    raw = _read_sources(from_files, literals)
    data, binary = {}, {}
    for k, v in raw.items():
        try:
            data[k] = v.decode()
        except UnicodeDecodeError:
            binary[k] = base64.b64encode(v).decode()
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                           "data": data}
    if binary:
        obj["binaryData"] = binary
    _created_object(obj, namespace, dry_run, output)


create_kinds.add_command(create_configmap, "cm")


# oc's `create route edge|passthrough|reencrypt` and `expose svc` (built in their own module).
_create_route, expose = route_commands(_created_object)
create_kinds.add_command(_create_route)

# kubectl's `create role|clusterrole|rolebinding|clusterrolebinding`.
for _rbac in rbac_commands(_created_object):
    create_kinds.add_command(_rbac)
