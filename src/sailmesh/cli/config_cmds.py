"""Configuration commands, as kubectl has them: apply, create, delete, get, label, install.

Every write goes through the loader (validation, file:line errors) and then the store as one
transaction; when the mesh runs, the daemon is asked to sync and its diagnostics and the
proxies' acceptance are reported before the command returns.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from sailmesh.cli.common import (
    all_namespaces_option,
    daemon_call,
    home,
    namespace_option,
)
from sailmesh.cli.common import label_selector_matches as _selected
from sailmesh.cli.output import age, emit, fail, table
from sailmesh.resources.base import Resource
from sailmesh.resources.errors import Problem, ResourceError
from sailmesh.resources.kinds import KINDS, RESOURCE_NAMES
from sailmesh.resources.loader import LoadResult, load_object, load_paths
from sailmesh.store import Outcome, Store, StoreError


def _store() -> Store:
    return Store(home().root)


def type_name(kind: str, api_version: str | None = None) -> str:
    """kubectl's `<resource>.<group>` prefix: `deployment.apps`, `gateway.networking.istio.io`."""
    api = api_version or KINDS[kind].API_VERSIONS[0]
    group = api.split("/")[0] if "/" in api else ""
    return f"{kind.lower()}.{group}" if group else kind.lower()


def _load(files: Sequence[str], namespace: str | None) -> LoadResult:
    try:
        result = load_paths(list(files), namespace)
    except ResourceError as exc:
        _report_problems(exc.problems)
        sys.exit(1)
    for w in result.warnings:
        click.echo(str(w), err=True)  # "file:line: warning: Kind ns/name: field: message"
    return result


def _report_problems(problems: Iterable[Problem]) -> None:
    for p in problems:
        click.echo(f"error: {p}" if p.is_error else str(p), err=True)


def write(resources: Sequence[Resource], *, create_only: bool = False, verb: str = "") -> None:
    try:
        outcomes = _store().apply(resources, create_only=create_only)
    except StoreError as exc:
        fail(str(exc))
    by_key = {r.ref: r for r in resources}
    for o in outcomes:
        r = by_key[o.ref]
        click.echo(f"{type_name(r.kind, r.api_version)}/{o.name} {verb or o.change}")
        if r.kind == "IstioOperator":
            _explain_mesh_config(r)
    _sync_and_report(outcomes)


def _explain_mesh_config(op: Resource) -> None:
    mesh = op.spec.mesh_config  # type: ignore[attr-defined]
    if mesh.mesh_mtls.min_protocol_version != "TLS_AUTO":
        # Istio applies meshMTLS to the server side of sidecar mTLS only (pitfall #19).
        click.echo(
            f"meshMTLS.minProtocolVersion {mesh.mesh_mtls.min_protocol_version}: applies to the server"
            " side of sidecar mutual TLS only (inbound of injected workloads); gateways and"
            " DestinationRule SIMPLE/MUTUAL keep their own settings (see tlsDefaults)."
        )
    if mesh.tls_defaults.min_protocol_version != "TLS_AUTO" or mesh.tls_defaults.cipher_suites:
        click.echo("tlsDefaults: the baseline of every gateway server's TLS settings; a server's own"
                   " minProtocolVersion/cipherSuites win.")


def _sync_and_report(outcomes: Sequence[Outcome]) -> None:
    reply = daemon_call("sync")
    if reply is None:
        return
    refs = {o.ref for o in outcomes}
    for d in reply.get("diagnostics", []):
        # Show what concerns the objects of this command; `sailctl status` shows all.
        if d["ref"] in refs or any(ref in d["message"] for ref in refs):
            field = f" {d['field']}:" if d.get("field") else ""
            click.echo(f"{d['severity']}: {d['ref']}:{field} {d['message']}", err=True)
    for node_id, ok in reply.get("proxies", {}).items():
        if ok is not True:
            click.echo(f"error: proxy {node_id} has not applied the new configuration: {ok}", err=True)


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="File, directory or - (stdin) with the resources.")
@namespace_option
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", default=None)
def apply(files: tuple[str, ...], namespace: str | None, dry_run: str, output: str | None) -> None:
    """Apply configuration from files or stdin (validated whole; nothing changes on error)."""
    result = _load(files, namespace)
    if dry_run != "none":
        _print_resources(list(result.resources), output or "name", dry_run=True)
        return
    write(list(result.resources))


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="File, directory or - (stdin) with the resources.")
@namespace_option
def replace(files: tuple[str, ...], namespace: str | None) -> None:
    """Replace existing resources (like `kubectl replace -f`); all must exist, or nothing
    changes."""
    resources = list(_load(files, namespace).resources)
    store = _store()
    missing = [r for r in resources
               if store.get(r.kind, r.namespace if r.NAMESPACED else "", r.name) is None]
    if missing:
        fail("\n".join(f'Error from server (NotFound): {type_name(r.kind, r.api_version)} "{r.name}"'
                       f" not found{f' in namespace {r.namespace}' if r.NAMESPACED else ''};"
                       " use `sailctl apply` or `sailctl create` for new objects" for r in missing))
    write(resources, verb="replaced")


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True)
@namespace_option
def install(files: tuple[str, ...], namespace: str | None) -> None:
    """Install mesh configuration from an IstioOperator (like `istioctl install -f`)."""
    result = _load(files, namespace or "istio-system")
    ops = [r for r in result.resources if r.kind == "IstioOperator"]
    if not ops:
        fail("no IstioOperator in the input; `install` takes an IstioOperator (use `apply` for others)")
    write(ops)
    click.echo("✔ Installation complete")


@click.command()
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", "files", multiple=True)
@namespace_option
@click.option("--all", "delete_all", is_flag=True)
@click.option("--ignore-not-found", is_flag=True)
def delete(args: tuple[str, ...], files: tuple[str, ...], namespace: str | None,
           delete_all: bool, ignore_not_found: bool) -> None:
    """Delete resources by file (-f), by `KIND NAME...` or `KIND/NAME`."""
    keys: list[tuple[str, str, str]] = []
    if files:
        keys = [r.key for r in _load(files, namespace).resources]
    else:
        for kind, names in _targets(args):
            ns = (namespace or "default") if KINDS[kind].NAMESPACED else ""
            if delete_all:
                names = [r.name for r in _store().list() if r.kind == kind and r.namespace == ns]
            if not names:
                fail("resource(s) were provided, but no name was specified")
            keys.extend((kind, ns, n) for n in names)
    try:
        outcomes = _store().delete(keys, ignore_missing=ignore_not_found)
    except StoreError as exc:
        fail(str(exc))
    for o in outcomes:
        click.echo(f'{type_name(o.kind)} "{o.name}" deleted')
    _sync_and_report(outcomes)


def _targets(args: Sequence[str]) -> list[tuple[str, list[str]]]:
    if not args:
        fail("you must provide one or more resources by argument or filename")
    out: list[tuple[str, list[str]]] = []
    if "/" in args[0]:
        for a in args:
            kind, _, name = a.partition("/")
            out.append((resolve_kind(kind), [name]))
        return out
    out.append((resolve_kind(args[0]), list(args[1:])))
    return out


def resolve_kind(name: str) -> str:
    key = name.lower().split(".")[0]
    if key in RESOURCE_NAMES:
        return RESOURCE_NAMES[key]
    fail(f'the server doesn\'t have a resource type "{name}"')


# --- get -------------------------------------------------------------------------------


@click.command()
@click.argument("kind_arg", metavar="KIND")
@click.argument("names", nargs=-1)
@namespace_option
@all_namespaces_option
@click.option("-o", "--output", default=None, help="yaml|json|name|wide")
@click.option("-l", "--selector", default=None, help="Label selector, e.g. app=httpbin,version!=v2")
def get(kind_arg: str, names: tuple[str, ...], namespace: str | None, all_namespaces: bool,
        output: str | None, selector: str | None) -> None:
    """Display resources (kubectl get)."""
    if kind_arg.lower() in ("pods", "pod", "po"):
        from sailmesh.cli.mesh_cmds import print_pods

        print_pods(namespace, all_namespaces, output, selector, names)
        return
    kinds = [resolve_kind(k) for k in kind_arg.split(",")]
    ns = namespace or "default"
    items = [
        r for r in _store().list()
        if r.kind in kinds
        and (all_namespaces or not r.NAMESPACED or r.namespace == ns)
        and (not names or r.name in names)
        and _selected(r.metadata.labels, selector)
    ]
    if names:
        found = {r.name for r in items}
        for n in names:
            if n not in found:
                where = f' in namespace "{ns}"' if KINDS[kinds[0]].NAMESPACED else ""
                click.echo(f'Error from server (NotFound): {type_name(kinds[0])} "{n}" not found{where}',
                           err=True)
        if not items:
            sys.exit(1)
    if output in ("yaml", "json", "name"):
        _print_resources(items, output, single=len(names) == 1)
        return
    if not items:
        where = "" if all_namespaces else f" in {ns} namespace"
        click.echo(f"No resources found{where}.", err=True)
        return
    if kinds == ["Route"]:
        from sailmesh.cli.router_cmds import routes_table

        click.echo(routes_table(items, all_namespaces))
        return
    click.echo(_get_table(items, all_namespaces))


def _created(r: Resource) -> float:
    ts = r.metadata.creation_timestamp
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() if ts else 0


def _columns(r: Resource, vips: dict[str, str]) -> tuple[list[str], list[Any]]:
    spec: Any = getattr(r, "spec", None)
    match r.kind:
        case "Service":
            ports = ",".join(f"{p.port}/{p.protocol}" for p in spec.ports) or "<none>"
            vip = vips.get(f"{r.namespace}/{r.name}", "<pending>")
            ext = "127.0.0.1" if spec.type == "LoadBalancer" else "<none>"
            return ["TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"], [spec.type, vip, ext, ports]
        case "Deployment":
            return ["REPLICAS"], [spec.replicas]
        case "VirtualService":
            return ["GATEWAYS", "HOSTS"], [_list(spec.gateways), _list(spec.hosts)]
        case "DestinationRule":
            return ["HOST"], [spec.host]
        case "ServiceEntry":
            return ["HOSTS", "LOCATION", "RESOLUTION"], [_list(spec.hosts), spec.location,
                                                         spec.resolution]
        case "PeerAuthentication":
            return ["MODE"], [spec.mtls.mode if spec.mtls else "UNSET"]
        case "Secret":
            return ["TYPE", "DATA"], [r.type, len(r.values())]  # type: ignore[attr-defined]
        case "ConfigMap":
            return ["DATA"], [len(r.files())]  # type: ignore[attr-defined]
        case "Namespace":
            return ["STATUS"], ["Active"]
    return [], []


def _list(xs: Sequence[str]) -> str:
    return "[" + ",".join(f'"{x}"' for x in xs) + "]"


def _get_table(items: Sequence[Resource], all_namespaces: bool) -> str:
    vips: dict[str, str] = {}
    if any(r.kind == "Service" for r in items):
        status = daemon_call("status") or {}
        vips = status.get("vips", {})
    headers = (["NAMESPACE"] if all_namespaces and items[0].NAMESPACED else []) + ["NAME"]
    extra, _ = _columns(items[0], vips)
    rows = []
    for r in items:
        _, values = _columns(r, vips)
        prefix = [r.namespace] if all_namespaces and r.NAMESPACED else []
        rows.append([*prefix, r.name, *values, age(_created(r))])
    return table([*headers, *extra, "AGE"], rows)


def resource_dict(r: Resource) -> dict[str, Any]:
    return r.model_dump(by_alias=True, exclude_unset=True, mode="json")


def _print_resources(items: Sequence[Resource], output: str, *, single: bool = False,
                     dry_run: bool = False) -> None:
    if output == "name":
        for r in items:
            suffix = " (dry run)" if dry_run else ""
            click.echo(f"{type_name(r.kind, r.api_version)}/{r.name}{suffix}")
        return
    docs = [resource_dict(r) for r in items]
    if any(r.kind == "Route" for r in items) and not dry_run:
        from sailmesh.cli.router_cmds import route_statuses, with_status

        statuses = route_statuses()
        docs = [with_status(d, statuses) if d.get("kind") == "Route" else d for d in docs]
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
        labels = dict(r.metadata.labels)
        for c in changes:
            if c.endswith("-") and "=" not in c:
                labels.pop(c[:-1], None)
                continue
            k, sep, v = c.partition("=")
            if not sep:
                fail(f"invalid label spec: {c}")
            if k in labels and labels[k] != v and not overwrite:
                fail(f"'{k}' already has a value ({labels[k]}), and --overwrite is false")
            labels[k] = v
        meta = r.metadata.model_copy(update={"labels": labels})
        updated.append(r.model_copy(update={"metadata": meta}))
    write(updated, verb="labeled")


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
                    output: str | None) -> None:
    try:
        resource = load_object(obj, source="<command line>", namespace=namespace)
    except ResourceError as exc:
        _report_problems(exc.problems)
        sys.exit(1)
    if dry_run != "none":
        _print_resources([resource], output or "name", single=True, dry_run=True)
        return
    write([resource], create_only=True, verb="created")


def _b64(data: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in data.items()}


_dry_run = click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
_output = click.option("-o", "--output", default=None)


@click.group(invoke_without_command=True)
@click.option("-f", "--filename", "files", multiple=True, help="Create from files (kubectl create -f).")
@namespace_option
@click.pass_context
def create(ctx: click.Context, files: tuple[str, ...], namespace: str | None) -> None:
    """Create a resource (namespace, secret, configmap) or from a file with -f."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"namespace": namespace}
        return
    if not files:
        click.echo(ctx.get_help())
        return
    write(list(_load(files, namespace).resources), create_only=True, verb="created")


@create.command("namespace")
@click.argument("name")
@_dry_run
@_output
def create_namespace(name: str, dry_run: str, output: str | None) -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    _created_object(obj, None, dry_run, output)


create.add_command(create_namespace, "ns")


@create.group("secret")
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


@create.command("configmap")
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


create.add_command(create_configmap, "cm")
