"""Commands about the running mesh: up, down, status, env, get pods, logs, exec.

`up` starts the daemon (`python -m sailmesh.meshd`) in its own session and waits, with
progress, until the ingress gateway serves; `down` asks it to stop and waits until every
namespace, interface and rule it made is gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from sailmesh.cli.common import (
    daemon_call,
    home,
    label_selector_matches,
    namespace_option,
    require_daemon,
)
from sailmesh.cli.output import age, emit, fail, table
from sailmesh.store import Store

UP_TIMEOUT_S = 60.0
console = Console(stderr=True, highlight=False)


def _pid_alive(pid: int) -> bool:
    # `sailctl up` in the foreground is the daemon's parent: reap it, or it lingers as a zombie.
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_daemon(ca_key_type: str | None = None) -> int:
    h = home()
    h.run.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        fail("sailctl up needs root: local pods are Linux network namespaces")
    with open(h.log_file, "ab") as log:
        proc = subprocess.Popen(
            # -P and cwd /: the caller's directory must not shadow packages (a `xds/` there
            # would hide xds-protos' `xds`).
            [sys.executable, "-P", "-m", "sailmesh.meshd"],
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "SAILMESH_HOME": str(h.root), "SAILMESH_INSTANCE": h.instance,
                 **({"SAILMESH_CA_KEY_TYPE": ca_key_type} if ca_key_type else {})},
        )
    return proc.pid


def _gateway_ready(status: dict[str, Any]) -> bool:
    routers = [p for p in status["pods"] if p.get("router")]
    if not routers or not all(p["ready"] for p in routers):
        return False
    return all(p["connected"] for p in status["proxies"].values()) and bool(status["proxies"])


def _wait_up(pid: int) -> dict[str, Any]:
    h = home()
    deadline = time.monotonic() + UP_TIMEOUT_S
    step = "starting control plane"
    with console.status(step) as spinner:
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                tail = h.log_file.read_text(errors="replace").splitlines()[-15:]
                fail("the mesh daemon exited during start-up:\n  " + "\n  ".join(tail))
            status = daemon_call("status")
            if status is not None:
                pods = status["pods"]
                ready = sum(1 for p in pods if p["ready"])
                spinner.update(f"starting pods: {ready}/{len(pods)} ready")
                if _gateway_ready(status) and ready == len(pods):
                    return status
                if _gateway_ready(status) and time.monotonic() > deadline - UP_TIMEOUT_S / 2:
                    return status
            time.sleep(0.1)
    fail(f"the mesh did not become ready in {UP_TIMEOUT_S:.0f}s; see {h.log_file}")


def _ingress_ports() -> dict[str, int]:
    svc = Store(home().root).get("Service", "istio-system", "istio-ingressgateway")
    ports: dict[str, int] = {}
    if svc is not None:
        for p in svc.spec.ports:  # type: ignore[attr-defined]
            target = p.target_port if isinstance(p.target_port, int) else p.port
            ports[p.name or str(p.port)] = target
    return ports


@click.command()
@click.option("-d", "--detach", is_flag=True, help="Run in the background and return.")
@click.option("--ca-key-type", type=click.Choice(["ecdsa-p256", "rsa-2048"]), default=None,
              help="Key type of a new self-signed mesh root (default ecdsa-p256; Istio's is "
                   "rsa-2048). An existing root is kept.")
def up(detach: bool, ca_key_type: str | None) -> None:
    """Start the local mesh: control plane, ingress gateway and every applied workload."""
    started = time.monotonic()
    status = daemon_call("status")
    if status is not None:
        click.echo(f"the mesh is already running (pid {status['pid']}, state {status['home']})")
        if detach:
            return
        pid = status["pid"]
    else:
        pid = _start_daemon(ca_key_type)
        status = _wait_up(pid)
        ports = _ingress_ports()
        click.echo(f"✔ control plane running (pid {pid}, state {home().root})")
        click.echo(
            f"✔ ingress gateway ready: http 127.0.0.1:{ports.get('http2', 8080)},"
            f" https 127.0.0.1:{ports.get('https', 8443)}"
            f" ({time.monotonic() - started:.1f}s)"
        )
        pending = [p["name"] for p in status["pods"] if not p["ready"]]
        if pending:
            click.echo(f"  still starting: {', '.join(pending)} (see `sailctl get pods -A`)")
    if detach:
        click.echo('Run `eval "$(sailctl env)"` to set INGRESS_HOST and the ports; '
                   "`sailctl down` stops everything.")
        return
    _live_view(pid)


def _live_view(pid: int) -> None:
    click.echo("Live status; Ctrl-C stops the mesh.", err=True)
    try:
        with Live(_status_table(), refresh_per_second=2, console=Console()) as live:
            while _pid_alive(pid):
                time.sleep(0.5)
                live.update(_status_table())
    except KeyboardInterrupt:
        pass
    _stop()


def _status_table() -> Table:
    status = daemon_call("status") or {"pods": [], "proxies": {}, "diagnostics": []}
    t = Table(title="sailmesh", expand=False)
    for col in ("NAMESPACE", "POD", "READY", "STATUS", "RESTARTS", "IP", "AGE"):
        t.add_column(col, overflow="fold")
    for p in status["pods"]:
        t.add_row(p["namespace"], p["name"], "1/1" if p["ready"] else "0/1", p["phase"],
                  str(p["restarts"]), p["ip"], age(p["started_at"]))
    problems = [d for d in status["diagnostics"] if d["severity"] != "info"]
    if problems:
        t.caption = f"{len(problems)} configuration problem(s): `sailctl status`"
    return t


def _stop() -> None:
    h = home()
    reply = daemon_call("shutdown")
    pid = reply["stopping"] if reply else None
    if pid is None and h.pid_file.exists():
        pid = int(h.pid_file.read_text().strip() or 0) or None
    if pid:
        deadline = time.monotonic() + 30
        with console.status("stopping pods and removing network namespaces"):
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        if _pid_alive(pid):
            fail(f"the mesh daemon (pid {pid}) did not stop within 30s; see {h.log_file}")
    # Whatever a crashed daemon left behind (namespaces, links, processes) goes too.
    from sailmesh.runtime.pods import LocalNode

    LocalNode(h.instance, h.root).teardown()
    click.echo("✔ mesh stopped; pods, network namespaces and rules removed")


@click.command()
def down() -> None:
    """Stop the local mesh and remove every namespace, interface and rule it created."""
    if os.geteuid() != 0:
        fail("sailctl down needs root")
    _stop()


@click.command()
@click.option("-o", "--output", default=None)
def status(output: str | None) -> None:
    """Show what runs: daemon, pods, proxies and their config state, problems."""
    st = daemon_call("status")
    if st is None:
        click.echo("the mesh is not running (`sailctl up -d` starts it)")
        sys.exit(3)
    if output:
        emit(st, output)
        return
    up_for = age(st["started"])
    click.echo(f"control plane: running (pid {st['pid']}, up {up_for}, config {st['version']})")
    click.echo(f"state: {st['home']}\n")
    click.echo(_pods_table(st["pods"], True))
    click.echo("")
    rows = []
    for _node_id, p in sorted(st["proxies"].items()):
        types = p["status"].get("types", {}) if isinstance(p["status"], dict) else {}
        # Only a NACK of what was last sent counts: an older one was superseded by a fix.
        nacks = [t for t, s in types.items() if s.get("last_nack")
                 and s["last_nack"].get("version") == s.get("sent_version")
                 and s.get("acked_version") != s.get("sent_version")]
        state = "NACK" if nacks else ("SYNCED" if p["connected"] else "DISCONNECTED")
        rows.append([f"{p['pod']}.{p['namespace']}", state, p["version"]])
    click.echo(table(["PROXY", "XDS", "VERSION"], rows))
    if st["diagnostics"]:
        click.echo("\nconfiguration problems:")
        for d in st["diagnostics"]:
            field = f" {d['field']}:" if d.get("field") else ""
            click.echo(f"  {d['severity']}: {d['ref']}:{field} {d['message']}")


@click.command("env")
def env_cmd() -> None:
    """Print INGRESS_HOST, INGRESS_PORT, SECURE_INGRESS_PORT, and the OpenShift router's
    APPS_DOMAIN, ROUTER_HOST, ROUTER_HTTP_PORT, ROUTER_HTTPS_PORT, ROUTER_CA for
    `eval "$(sailctl env)"`."""
    from sailmesh.cli.router_cmds import router_info

    ports = _ingress_ports()
    click.echo("export INGRESS_HOST=127.0.0.1")
    click.echo(f"export INGRESS_PORT={ports.get('http2', 8080)}")
    click.echo(f"export SECURE_INGRESS_PORT={ports.get('https', 8443)}")
    router = router_info()
    click.echo(f"export APPS_DOMAIN={router['appsDomain']}")
    click.echo("export ROUTER_HOST=127.0.0.1")
    click.echo(f"export ROUTER_HTTP_PORT={router['httpPort']}")
    click.echo(f"export ROUTER_HTTPS_PORT={router['httpsPort']}")
    click.echo(f"export ROUTER_CA={router['caFile']}")


# --- pods ------------------------------------------------------------------------------


def _pods_table(pods: Sequence[dict[str, Any]], with_ns: bool) -> str:
    rows = []
    for p in pods:
        n = p["containers"]
        ready = f"{n if p['ready'] else 0}/{n}"
        row = [p["name"], ready, p["phase"], p["restarts"], age(p["started_at"]), p["ip"] or "<none>"]
        rows.append(([p["namespace"]] if with_ns else []) + row)
    headers = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP"]
    return table((["NAMESPACE"] if with_ns else []) + headers, rows)


def print_pods(namespace: str | None, all_namespaces: bool, output: str | None,
               selector: str | None, names: Sequence[str]) -> None:
    st = require_daemon("status")
    ns = namespace or "default"
    pods = [p for p in st["pods"]
            if (all_namespaces or p["namespace"] == ns)
            and (not names or p["name"] in names)
            and label_selector_matches(p["labels"], selector)]
    if output in ("json", "yaml"):
        emit({"apiVersion": "v1", "kind": "List", "items": pods}, output)
        return
    if not pods:
        where = "" if all_namespaces else f" in {ns} namespace"
        click.echo(f"No resources found{where}.", err=True)
        return
    click.echo(_pods_table(pods, all_namespaces))


def find_pod(target: str, namespace: str | None) -> dict[str, Any]:
    """`POD` or `deploy/NAME` (first running pod of the Deployment), as kubectl resolves them."""
    st = require_daemon("status")
    ns = namespace or "default"
    pods = [p for p in st["pods"] if p["namespace"] == ns]
    kind, _, name = target.rpartition("/")
    if kind in ("deploy", "deployment", "deployments", "deployment.apps"):
        matches = [p for p in pods if p.get("deployment") == name]
        matches.sort(key=lambda p: (not p["ready"], p["name"]))
        if not matches:
            fail(f'deployments.apps "{name}" not found in namespace "{ns}"')
        return matches[0]
    if kind not in ("", "pod", "pods", "po"):
        fail(f"cannot use {kind}/ here: give a pod name or deploy/NAME")
    for p in pods:
        if p["name"] == name:
            return p
    fail(f'pods "{name}" not found in namespace "{ns}"')


@click.command()
@click.argument("target")
@namespace_option
@click.option("-c", "--container", default=None)
@click.option("-f", "--follow", is_flag=True)
@click.option("--tail", default=-1, type=int)
def logs(target: str, namespace: str | None, container: str | None, follow: bool,
         tail: int) -> None:
    """Print a pod's output (POD or deploy/NAME)."""
    pod = find_pod(target, namespace)
    logs_by_name = pod.get("logs", {})
    if not logs_by_name:
        fail(f"pod {pod['name']} has no output yet")
    name = container or next(iter(logs_by_name))
    if name not in logs_by_name:
        fail(f"container {name} is not valid for pod {pod['name']}: {', '.join(logs_by_name)}")
    path = logs_by_name[name]
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines(keepends=True)
            out = lines[-tail:] if tail >= 0 else lines
            sys.stdout.buffer.write(b"".join(out))
            sys.stdout.flush()
            while follow:
                chunk = f.read()
                if chunk:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                else:
                    time.sleep(0.2)
    except FileNotFoundError:
        fail(f"pod {pod['name']} has no output yet")
    except KeyboardInterrupt:
        pass


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@namespace_option
@click.option("-c", "--container", default=None)
@click.option("-i", "--stdin", is_flag=True)
@click.option("-t", "--tty", is_flag=True)
def exec_cmd(target: str, command: tuple[str, ...], namespace: str | None,
             container: str | None, stdin: bool, tty: bool) -> None:
    """Run a command inside a pod's network and mount namespaces: exec POD -- CMD..."""
    argv = [c for c in command if c != "--"] if command and command[0] == "--" else list(command)
    pod = find_pod(target, namespace)
    reply = require_daemon("exec_argv", namespace=pod["namespace"], pod=pod["name"], argv=argv)
    full = reply["argv"]
    os.execvp(full[0], full)

