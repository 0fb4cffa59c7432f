"""oc's Route verbs: `create route edge|passthrough|reencrypt` and `expose svc`.

Owns: turning oc's flags into a Route manifest, as oc does it (the Service must exist; the
Route is named after the Service unless a name is given; without --port the Service's
first port is used, by name when it has one; certificate flags read PEM files).
Must not know: how Routes are admitted or served (`sailmesh.router`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sailmesh.cli.common import home, namespace_option
from sailmesh.cli.output import fail
from sailmesh.store import Store

# Stores a new object the way `create` does (validation, dry run, output, sync):
# (manifest, namespace, dry_run, output, verb). Given by the module that owns `create`.
Submit = Callable[[dict[str, Any], str | None, str, str | None, str], None]

_POLICIES = click.Choice(["None", "Allow", "Redirect", ""], case_sensitive=True)


def _service(name: str, namespace: str | None) -> Any:
    svc = Store(home().root).get("Service", namespace or "default", name)
    if svc is None:
        fail(f'Error from server (NotFound): services "{name}" not found')
    return svc


def _default_port(svc: Any) -> str | int | None:
    ports = svc.spec.ports
    if not ports:
        return None
    return ports[0].name or ports[0].target_port or ports[0].port


def _route(name: str, svc: Any, port: str | None, hostname: str | None, path: str | None,
           wildcard: str | None, tls: dict[str, Any] | None,
           labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"to": {"kind": "Service", "name": svc.name, "weight": 100}}
    target: str | int | None = port if port else _default_port(svc)
    if isinstance(target, str) and target.isdigit():
        target = int(target)
    if target is not None:
        spec["port"] = {"targetPort": target}
    if hostname:
        spec["host"] = hostname
    if path:
        spec["path"] = path
    if tls:
        spec["tls"] = tls
    spec["wildcardPolicy"] = wildcard or "None"
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": meta,
            "spec": spec}


def _pem(path: str | None) -> str | None:
    return Path(path).read_text() if path else None


def _tls(termination: str, cert: str | None, key: str | None, ca_cert: str | None,
         dest_ca_cert: str | None, insecure_policy: str | None) -> dict[str, Any]:
    tls: dict[str, Any] = {"termination": termination}
    for field, value in (("certificate", _pem(cert)), ("key", _pem(key)),
                         ("caCertificate", _pem(ca_cert)),
                         ("destinationCACertificate", _pem(dest_ca_cert))):
        if value:
            tls[field] = value
    if insecure_policy:
        tls["insecureEdgeTerminationPolicy"] = insecure_policy
    return tls


def _create(submit: Submit, name: str | None, service: str, namespace: str | None,
            port: str | None, hostname: str | None, path: str | None, wildcard: str | None,
            tls: dict[str, Any], dry_run: str, output: str | None) -> None:
    svc = _service(service, namespace)
    obj = _route(name or service, svc, port, hostname, path, wildcard, tls)
    submit(obj, namespace, dry_run, output, "created")


_file = click.Path(exists=True, dir_okay=False)


def _common(f: Any) -> Any:
    for option in reversed([
        click.option("--service", required=True, help="Name of the Service the Route exposes."),
        click.option("--port", default=None,
                     help="Name or number of the Service's target port (default: its first)."),
        click.option("--hostname", default=None,
                     help="Host name (default: <name>-<namespace>.<apps domain>)."),
        click.option("--insecure-policy", type=_POLICIES, default=None,
                     help="Plain HTTP: None (refused), Allow or Redirect."),
        click.option("--wildcard-policy", type=click.Choice(["None", "Subdomain"]), default=None),
        namespace_option,
        click.option("--dry-run", type=click.Choice(["none", "client", "server"]),
                     default="none"),
        click.option("-o", "--output", default=None),
    ]):
        f = option(f)
    return f


def _certificates(f: Any) -> Any:
    for option in reversed([
        click.option("--cert", type=_file, default=None, help="Certificate file (PEM)."),
        click.option("--key", type=_file, default=None, help="Private key file (PEM)."),
        click.option("--ca-cert", type=_file, default=None, help="CA chain file (PEM)."),
        click.option("--path", default=None, help="Path the Route serves (e.g. /api)."),
    ]):
        f = option(f)
    return f


def route_commands(submit: Submit) -> tuple[click.Group, click.Command]:
    """oc's `create route` group and `expose` command, storing through `submit`."""

    @click.group("route")
    def create_route() -> None:
        """Create a secured Route: edge, passthrough or reencrypt (oc create route)."""


    @create_route.command("edge")
    @click.argument("name", required=False)
    @_common
    @_certificates
    def create_route_edge(name: str | None, service: str, port: str | None, hostname: str | None,
                          insecure_policy: str | None, wildcard_policy: str | None,
                          namespace: str | None, dry_run: str, output: str | None,
                          cert: str | None, key: str | None, ca_cert: str | None,
                          path: str | None) -> None:
        """TLS terminated at the router; plain HTTP to the pods."""
        _create(submit, name, service, namespace, port, hostname, path, wildcard_policy,
                _tls("edge", cert, key, ca_cert, None, insecure_policy), dry_run, output)


    @create_route.command("passthrough")
    @click.argument("name", required=False)
    @_common
    def create_route_passthrough(name: str | None, service: str, port: str | None,
                                 hostname: str | None, insecure_policy: str | None,
                                 wildcard_policy: str | None, namespace: str | None, dry_run: str,
                                 output: str | None) -> None:
        """TLS passed through to the pods untouched (the router reads only the SNI)."""
        _create(submit, name, service, namespace, port, hostname, None, wildcard_policy,
                _tls("passthrough", None, None, None, None, insecure_policy), dry_run, output)


    @create_route.command("reencrypt")
    @click.argument("name", required=False)
    @_common
    @_certificates
    @click.option("--dest-ca-cert", type=_file, default=None,
                  help="CA that signed the pods' certificate (default: the service CA, with the "
                       "<service>.<namespace>.svc name checked).")
    def create_route_reencrypt(name: str | None, service: str, port: str | None,
                               hostname: str | None, insecure_policy: str | None,
                               wildcard_policy: str | None, namespace: str | None, dry_run: str,
                               output: str | None, cert: str | None, key: str | None,
                               ca_cert: str | None, path: str | None,
                               dest_ca_cert: str | None) -> None:
        """TLS terminated at the router and opened again to the pods."""
        _create(submit, name, service, namespace, port, hostname, path, wildcard_policy,
                _tls("reencrypt", cert, key, ca_cert, dest_ca_cert, insecure_policy), dry_run,
                output)


    @click.command("expose")
    @click.argument("args", nargs=-1, required=True)
    @click.option("--name", default=None, help="Name of the Route (default: the Service's).")
    @click.option("--hostname", default=None)
    @click.option("--path", default=None)
    @click.option("--port", default=None, help="Target port of the Service (name or number).")
    @click.option("--wildcard-policy", type=click.Choice(["None", "Subdomain"]), default=None)
    @namespace_option
    @click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
    @click.option("-o", "--output", default=None)
    def expose(args: tuple[str, ...], name: str | None, hostname: str | None, path: str | None,
               port: str | None, wildcard_policy: str | None, namespace: str | None, dry_run: str,
               output: str | None) -> None:
        """Expose a Service with an unsecured Route (oc expose svc/NAME)."""
        kind, _, target = args[0].partition("/")
        if not target and len(args) > 1:
            target = args[1]
        if kind.lower() not in ("svc", "service", "services") or not target:
            fail("expose creates a Route for a Service: expose svc/NAME (or service NAME)")
        svc = _service(target, namespace)
        obj = _route(name or target, svc, port, hostname, path, wildcard_policy, None,
                     dict(svc.metadata.labels))
        submit(obj, namespace, dry_run, output, "exposed")

    return create_route, expose
