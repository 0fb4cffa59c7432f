"""Commands about the running mesh: up, down, status, env (logs and exec: pod_cmds).

`up` starts the daemon under its keeper (`python -m sailmesh.meshd.keeper`, which restarts
a daemon that dies; the new one adopts the running pods) in its own session — or as the
systemd service of `sailctl unit install` when there is one — and waits,
with progress, until the ingress gateway serves; on a mesh whose daemon died it starts one
that adopts the pods. `down` asks it to stop and waits until every namespace, interface and
rule it made is gone.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from sailmesh.cli.common import (
    daemon_call,
    home,
)
from sailmesh.cli.output import age, emit, fail, table
from sailmesh.meshd.unit import installed_unit, systemd_running, unit_name
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
    # An exited process nobody reaped yet (its parent is an init that does not reap, as in
    # some containers) is gone for us.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def keeper_pid() -> int | None:
    """The running keeper of this mesh (meshd.keeper), if any."""
    path = home().keeper_pid_file
    try:
        pid = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and _pid_alive(pid) and b"sailmesh.meshd.keeper" in _cmdline(pid) else None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _start_daemon(ca_key_type: str | None = None) -> int:
    """Start meshd under its keeper, which restarts it within a second if it dies."""
    h = home()
    h.run.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        fail("sailctl up needs root: local pods are Linux network namespaces")
    running = keeper_pid()
    if running is not None:
        return running  # restarting meshd right now: it adopts the running pods
    if installed_unit(h) is not None and systemd_running():
        return _start_unit(unit_name(h))
    with open(h.log_file, "ab") as log:
        proc = subprocess.Popen(
            # -P and cwd /: the caller's directory must not shadow packages (a `xds/` there
            # would hide xds-protos' `xds`).
            [sys.executable, "-P", "-m", "sailmesh.meshd.keeper", str(h.keeper_pid_file)],
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "SAILMESH_HOME": str(h.root), "SAILMESH_INSTANCE": h.instance,
                 **({"SAILMESH_CA_KEY_TYPE": ca_key_type} if ca_key_type else {})},
        )
    return proc.pid


def _start_unit(name: str) -> int:
    """Start the keeper as the systemd service `sailctl unit install` wrote; its pid."""
    proc = subprocess.run(["systemctl", "start", name], capture_output=True, text=True)
    if proc.returncode != 0:
        fail(f"systemctl start {name} failed: {(proc.stderr or proc.stdout).strip()}")
    deadline = time.monotonic() + 10
    while (pid := keeper_pid()) is None:
        if time.monotonic() > deadline:
            fail(f"{name} started no keeper; see `systemctl status {name}`")
        time.sleep(0.05)
    return pid


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
                # Settled: the last push saw every pod as it is (its endpoint is out).
                if _gateway_ready(status) and ready == len(pods) and not status.get("unsettled"):
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
    keeper = keeper_pid()
    if pid is None and keeper is not None:
        os.kill(keeper, signal.SIGTERM)  # it passes the signal on to a restarting meshd
    deadline = time.monotonic() + 30
    with console.status("stopping pods and removing network namespaces"):
        while any(p and _pid_alive(p) for p in (pid, keeper)) and time.monotonic() < deadline:
            time.sleep(0.1)
    if any(p and _pid_alive(p) for p in (pid, keeper)):
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
    if st.get("renewal_failures"):
        click.echo("\ncertificates the CA could not renew:")
        for f in st["renewal_failures"]:
            click.echo(f"  {f['namespace']}/{f['pod']}: {f['error']} (failing since {f['since']},"
                       f" next try {f['retryAt']})")
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
