"""Configuration commands, as kubectl has them: `create <kind>` (the object is built here
and sent as a `create_object` request, `cli.submit`), `delete` naming pods, the objects of a
dry run with `-o` (`print_dry_run`), and `write` for the other changing verbs (`patch`,
`scale`, `rollout restart`, `install`).

Every write goes through the loader (validation, file:line errors) and then the store as one
transaction (`store.applying`, which meshd's write operations run too); when the mesh runs,
the daemon is asked to sync and its diagnostics and the proxies' acceptance are reported
before the command returns.
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
from sailmesh.cli.live_kinds import live_kind
from sailmesh.cli.output import emit, fail
from sailmesh.cli.rbac_cmds import rbac_commands
from sailmesh.cli.route_cmds import route_commands
from sailmesh.cli.submit import submit
from sailmesh.resources.base import Resource
from sailmesh.resources.errors import ResourceError
from sailmesh.resources.kinds import KINDS
from sailmesh.resources.loader import load_object
from sailmesh.resources.selectors import label_selector_matches
from sailmesh.sources import Source
from sailmesh.sources.targets import named_targets
from sailmesh.store import Store, applying, commands


def _store() -> Store:
    return Store(home().root)


def _report_problems(exc: ResourceError) -> NoReturn:
    """The loader's problems, as `apply` prints them, and exit 1."""
    report = applying.Report()
    applying.report_problems(exc, report)
    print_report(report.lines, report.code)
    sys.exit(1)


def write(resources: Sequence[Resource], *, create_only: bool = False, verb: str = "",
          dry_run: applying.DryRun = "none") -> None:
    """Store `resources` as one transaction, print kubectl's lines and the mesh's answer."""
    report = applying.Report()
    applying.write(_store(), resources, report, create_only=create_only, verb=verb,
                   dry_run=dry_run)
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


def delete_with_pods(request: dict[str, Any]) -> None:
    """`delete` naming pods (`pod NAME`, `pod/NAME`, `pods,vs -l ...`): the running mesh
    stops the pods (their Deployments start new ones); the stored kinds named with them go
    the way of every `delete KIND NAME` (`cli.submit`)."""
    args, namespace = request["args"], request["namespace"]
    kinds = [kind for kind, _names in named_targets(args)]
    for kind in kinds:
        if live_kind(kind) not in (None, "Pod"):
            fail(f"{kind} are not stored objects: they belong to the running mesh")
    if "/" in args[0]:
        pods = [a.partition("/")[2] for a in args if live_kind(a.partition("/")[0])]
        stored = [a for a in args if not live_kind(a.partition("/")[0])]
    else:
        pods = list(args[1:]) if any(live_kind(k) == "Pod" for k in kinds) else []
        rest = [k for k in kinds if not live_kind(k)]
        stored = [",".join(rest), *args[1:]] if rest else []
    ns = namespace or "default"
    if request["selector"] is not None or request["all"]:
        pods = _selected_pods(ns, request["selector"])
        if not pods:
            click.echo(f"No resources found in {ns} namespace.", err=True)
    elif not pods:
        fail("resource(s) were provided, but no name was specified")
    if request["dry_run"] != "none":
        fail("--dry-run is not taken for pods")
    if pods:
        _delete_pods([(ns, p) for p in pods], request["ignore_not_found"])
    if stored:
        submit("delete_named", **{**request, "args": stored})


def _selected_pods(ns: str, selector: str | None) -> list[str]:
    view = cluster_view.ClusterView.read(home(), live=True)
    return [o["metadata"]["name"] for o in view.objects("Pod", ns)
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
    if output == "name":  # kubectl's -o name: `<type>/<name>`, dry run or not
        for r in items:
            click.echo(f"{type_name(r.kind, r.api_version)}/{r.name}")
        return
    docs = [resource_dict(r) for r in items]
    data = docs[0] if single or (dry_run and len(docs) == 1) else {
        "apiVersion": "v1", "kind": "List", "items": docs, "metadata": {"resourceVersion": ""}}
    emit(data, output)


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
    if dry_run == "none" or (dry_run == "server" and output is None):
        # A server dry run is checked against the stored objects (AlreadyExists).
        submit("create_object", object=obj, namespace=namespace, verb=verb, dry_run=dry_run)
        return
    try:
        resource = load_object(obj, source=commands.COMMAND_LINE, namespace=namespace)
    except ResourceError as exc:
        _report_problems(exc)
    if output is not None:
        _print_resources([resource], output, single=True, dry_run=True)
    else:  # kubectl asks no server: an existing object is no error
        click.echo(f"{resource.type_name}/{resource.name} {verb} (dry run)")


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
