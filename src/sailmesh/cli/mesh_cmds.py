"""Commands about the running mesh: up, down, status, env, get pods, logs, exec.

`up` starts the daemon (`python -m sailmesh.meshd`) in its own session and waits, with
progress, until the ingress gateway serves; `down` asks it to stop and waits until every
namespace, interface and rule it made is gone.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

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
    click.echo(f"state: {st['home']}")
    if st.get("metrics"):
        click.echo(f"metrics: {st['metrics']} (Istio standard metrics, Prometheus text)")
    click.echo("")
    click.echo(_pods_table(st["pods"], True))
    click.echo("")
    rows, why = [], []
    for _node_id, p in sorted(st["proxies"].items()):
        name = f"{p['pod']}.{p['namespace']}"
        rows.append([name, p["state"], p["version"]])
        if p["state"] in ("NACK", "STALE"):
            why.append(f"  {name}: {p['detail']}")
    click.echo(table(["PROXY", "XDS", "VERSION"], rows))
    if why:
        click.echo("\nproxies not in sync:")
        click.echo("\n".join(why))
    if st["diagnostics"]:
        click.echo("\nconfiguration problems:")
        for d in st["diagnostics"]:
            field = f" {d['field']}:" if d.get("field") else ""
            click.echo(f"  {d['severity']}: {d['ref']}:{field} {d['message']}")


# Shell functions, not aliases: they also reach `$(…)`, `<(…)` and (exported) child shells,
# and they exist only in the shell that evaluates them.
DROP_IN_NAMES = ("kubectl", "istioctl", "oc")


@click.command("env")
@click.option("--aliases", is_flag=True,
              help="Print shell functions kubectl, istioctl and oc that run this sailctl, for"
                   ' `eval "$(sailctl env --aliases)"` (this shell only).')
def env_cmd(aliases: bool) -> None:
    """Print INGRESS_HOST, INGRESS_PORT, SECURE_INGRESS_PORT, and the OpenShift router's
    APPS_DOMAIN, ROUTER_HOST, ROUTER_HTTP_PORT, ROUTER_HTTPS_PORT, ROUTER_CA for
    `eval "$(sailctl env)"`."""
    from sailmesh.cli.router_cmds import router_info

    if aliases:
        exe = shlex.quote(os.path.join(os.path.dirname(sys.executable), "sailctl"))
        if not os.path.exists(exe.strip("'")):
            exe = shlex.quote(sys.argv[0])
        for name in DROP_IN_NAMES:
            click.echo(f'{name}() {{ {exe} "$@"; }}')
        click.echo(f"export -f {' '.join(DROP_IN_NAMES)}")
        return
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
        status = p.get("reason") or p["phase"]
        row = [p["name"], ready, status, p["restarts"], age(p["started_at"]), p["ip"] or "<none>"]
        rows.append(([p["namespace"]] if with_ns else []) + row)
    headers = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP"]
    return table((["NAMESPACE"] if with_ns else []) + headers, rows)


def find_pod(target: str, namespace: str | None) -> dict[str, Any]:
    """`POD`, `pod/POD`, `deploy/NAME` or `svc/NAME` (a ready pod of it first), as kubectl
    resolves them."""
    return find_pods(target, namespace, None)[0]


def find_pods(target: str | None, namespace: str | None, selector: str | None
              ) -> list[dict[str, Any]]:
    st = require_daemon("status")
    ns = namespace or "default"
    pods = sorted((p for p in st["pods"] if p["namespace"] == ns),
                  key=lambda p: (not p["ready"], p["name"]))
    if target is None:
        found = [p for p in pods if label_selector_matches(p["labels"], selector)]
        if not found:
            fail(f"No resources found in {ns} namespace.")
        return found
    kind, _, name = target.rpartition("/")
    if kind in ("deploy", "deployment", "deployments", "deployment.apps"):
        matches_ = [p for p in pods if p.get("deployment") == name]
        if not matches_:
            fail(f'deployments.apps "{name}" not found')
        return matches_[:1]
    if kind in ("svc", "service", "services"):
        return [_service_pod(name, ns, pods)]
    if kind not in ("", "pod", "pods", "po"):
        fail(f"cannot use {kind}/ here: give a pod name, deploy/NAME or svc/NAME")
    for p in pods:
        if p["name"] == name:
            return [p]
    fail(f'pods "{name}" not found')


def _service_pod(name: str, ns: str, pods: Sequence[dict[str, Any]]) -> dict[str, Any]:
    svc = Store(home().root).get("Service", ns, name)
    if svc is None:
        fail(f'services "{name}" not found')
    selector = svc.spec.selector or {}  # type: ignore[attr-defined]
    chosen = [p for p in pods if selector and label_selector_matches(p["labels"], ",".join(
        f"{k}={v}" for k, v in selector.items()))]
    if not chosen:
        fail(f"no pods of service {name} in namespace {ns}")
    return chosen[0]


def _default_container(pod: dict[str, Any]) -> str:
    """The app container: Istio's injector marks it as kubectl's default container, so
    kubectl picks it without naming the others."""
    names = pod.get("container_names") or list(pod.get("logs", {}))
    return next((n for n in names if n != "istio-proxy"), names[0] if names else "")


# The kubelet's answer to `logs` for a container that waits to start, by waiting reason.
_LOGS_WAITING = {"ErrImagePull": "image can't be pulled",
                 "ImagePullBackOff": "trying and failing to pull image"}


def _waiting_reason(pod: dict[str, Any], container: str) -> str:
    """The reason `container` waits to start in a pod that cannot start ("" otherwise)."""
    if pod.get("phase") != "Pending" or not pod.get("reason"):
        return ""
    if pod.get("waiting") and pod["waiting"] != container:
        return "ContainerCreating"
    return str(pod["reason"])


def _fail_waiting(first_line: str, pod: dict[str, Any]) -> NoReturn:
    """kubectl's error for a container that is not running, then why it is not (the
    kubelet's message, which kubectl would show only in `describe pod`)."""
    click.echo(f"{first_line}\n{pod['message']}", err=True)
    sys.exit(1)


@click.command()
@click.argument("target", required=False)
@namespace_option
@click.option("-c", "--container", default=None)
@click.option("-l", "--selector", default=None, help="Logs of every pod the selector matches.")
@click.option("--all-containers", is_flag=True)
@click.option("--prefix", is_flag=True, help="Prefix each line with [pod/NAME/CONTAINER].")
@click.option("-f", "--follow", is_flag=True)
@click.option("--tail", default=None, type=int,
              help="Last lines to show (default all; 10 with a selector, as kubectl).")
def logs(target: str | None, namespace: str | None, container: str | None, selector: str | None,
         all_containers: bool, prefix: bool, follow: bool, tail: int | None) -> None:
    """Print a pod's output (POD, deploy/NAME, or -l SELECTOR)."""
    if (target is None) == (selector is None):
        fail("expected POD, TYPE/NAME or -l SELECTOR (exactly one)")
    pods = find_pods(target, namespace, selector)
    if tail is None:
        tail = 10 if selector else -1
    streams = []
    for pod in pods:
        logs_by_name = pod.get("logs", {})
        names = list(logs_by_name) if all_containers else [container or _default_container(pod)]
        for name in names:
            reason = _waiting_reason(pod, name)
            if reason:
                _fail_waiting(f'Error from server (BadRequest): container "{name}" in pod '
                              f'"{pod["name"]}" is waiting to start: '
                              f"{_LOGS_WAITING.get(reason, reason)}", pod)
            if name not in logs_by_name:
                fail(f"container {name} is not valid for pod {pod['name']}")
            label = f"[pod/{pod['name']}/{name}] " if prefix else ""
            streams.append((logs_by_name[name], label))
    for path, label in streams:
        _print_log(path, label, tail, follow and len(streams) == 1)


def _print_log(path: str, label: str, tail: int, follow: bool) -> None:
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines(keepends=True)
            out = lines[-tail:] if tail > 0 else ([] if tail == 0 else lines)
            sys.stdout.buffer.write(b"".join(label.encode() + line for line in out))
            sys.stdout.flush()
            while follow:
                chunk = f.read()
                if chunk:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                else:
                    time.sleep(0.2)
    except FileNotFoundError:
        return
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
    """Run a command in a pod's container: exec POD|deploy/NAME [-c CONTAINER] -- CMD...

    Like kubectl, a failing command's status is the exit status and is reported as
    "command terminated with exit code N" on stderr.
    """
    argv = [c for c in command if c != "--"] if command and command[0] == "--" else list(command)
    pod = find_pod(target, namespace)
    name = container or _default_container(pod)
    if _waiting_reason(pod, name):
        _fail_waiting(f'error: unable to upgrade connection: container not found ("{name}")', pod)
    reply = require_daemon("exec_argv", namespace=pod["namespace"], pod=pod["name"], argv=argv,
                           container=name)
    try:
        code = subprocess.run(reply["argv"], stdin=None if stdin else subprocess.DEVNULL).returncode
    except KeyboardInterrupt:
        code = 130
    if code != 0:
        click.echo(f"command terminated with exit code {code}", err=True)
        sys.exit(code)
