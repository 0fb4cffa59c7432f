"""Control plane benchmark: how long a configuration change takes to become effective in a
live mesh of N Services and M injected pods, what the daemon spends on it, and what it costs
idle — for this working tree and for an older commit, measured in the same run.

    python bench/control_plane.py [--cells 100x10,1000x30] [--changes 10] [--base 18fd7a3]
                                  [--only-base]

For each cell (N Services over M nginx Deployments in one injected namespace, plus one
client pod) and each code (the working tree, and `--base` checked out with `git worktree`
into a temp dir and run through PYTHONPATH), one mesh is started; the two codes alternate
their order from cell to cell so that drift on the machine falls on both. A change applies a
VirtualService (a direct response naming the change for Service svc-0) and a DestinationRule
(a new subset for svc-1) with `sailctl apply`; a poller inside the client pod (through its
sidecar) asks svc-0 every 5 ms and reports when the new answer first arrives.

Reported per cell and code: change → effective (apply started → the client pod's traffic
shows it) p50/p99/max; `apply` → every proxy ACKed; the control plane's part of a change and
the proxies' part (from the daemon's push log line; the base commit has none); xDS
resources sent to all proxies per change (from `status`; codes before delta xDS have none); daemon CPU
seconds per change; daemon RSS after start and after the changes; daemon idle CPU (cores,
over 10 s); at start, the time from applying the mesh until every pod is ready and every
proxy SYNCED, and the slowest `sailctl status` answer meanwhile (polled every 0.5 s).
Nothing here is a recorded figure: every number printed was measured now.
Targets (issue 11): at (1000,30) change → effective p99 < 0.5 s; at (1000,100) < 1.5 s
with the control plane's part < 0.3 s; RSS < 250 MB at (1000,100); idle < 0.05 cores.
Run it only while nobody else needs the machine (it starts up to M+3 Envoys per mesh).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

INSTANCE = "cp"
NS = "cpbench"
APP_PORT = 8080
PUSH_LINE = re.compile(r"push \S+: control plane ([\d.]+) s \(store and pods ([\d.]+) s.* "
                       r"confirmed in ([\d.]+) s")

CONF = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}, labels: {{istio-injection: enabled}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: app-conf, namespace: {NS}}}
data:
  default.conf: |
    server {{ listen {APP_PORT}; access_log off; location / {{ return 200 "app"; }} }}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: client, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app: client}}}}
  template:
    metadata: {{labels: {{app: client}}}}
    spec:
      containers: [{{name: client, image: curlimages/curl, command: [sleep, infinity]}}]
"""

APP = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%(j)d, namespace: %(ns)s}
spec:
  selector: {matchLabels: {app: app-%(j)d}}
  template:
    metadata: {labels: {app: app-%(j)d}}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports: [{containerPort: %(port)d}]
        volumeMounts: [{name: conf, mountPath: /etc/nginx/conf.d}]
      volumes: [{name: conf, configMap: {name: app-conf}}]
"""

SERVICE = """---
apiVersion: v1
kind: Service
metadata: {name: svc-%(i)d, namespace: %(ns)s}
spec:
  selector: {app: app-%(j)d}
  ports: [{name: http, port: 80, targetPort: %(port)d}]
"""

CHANGE = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-0, namespace: %(ns)s}
spec:
  hosts: [svc-0]
  http: [{directResponse: {status: 200, body: {string: "change-%(k)d"}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-1, namespace: %(ns)s}
spec:
  host: svc-1
  subsets: [{name: v%(k)d, labels: {version: v%(k)d}}]
"""


def poll(host: str) -> None:
    """Runs in the client pod: GET http://host/ every 5 ms; print `<time> <body>` on change."""
    import socket as s

    last = None
    while True:
        try:
            with s.create_connection((host, 80), timeout=2) as c:
                c.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                # Read up to Content-Length, not to EOF: after a direct response Envoy
                # closes only when the client does, or after its 1 s delayed-close timeout.
                while chunk := c.recv(65536):
                    data += chunk
                    head, sep, body_bytes = data.partition(b"\r\n\r\n")
                    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    if sep and length and len(body_bytes) >= int(length[1]):
                        break
            body = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").strip()
        except OSError as exc:
            body = f"error {exc}"
        if body != last:
            print(f"{time.time():.6f} {body}", flush=True)
            last = body
        time.sleep(0.005)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * q / 100))]


class Mesh:
    """One mesh of one code (its `src` directory) for one cell."""

    def __init__(self, src: Path) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="smbench-cp-", dir="/tmp"))
        self.env = {**os.environ, "SAILMESH_HOME": str(self.home), "SAILMESH_INSTANCE": INSTANCE,
                    "PYTHONPATH": str(src),
                    "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        self.pid = 0

    def sailctl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-c", "from sailmesh.cli.main import main; main()", *args]
        proc = subprocess.run(argv, env=self.env, text=True, capture_output=True, input=input,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"sailctl {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc

    def status(self) -> dict:
        return json.loads(self.sailctl("status", "-o", "json").stdout)

    def up(self, n: int, m: int) -> tuple[float, float]:
        """Start the mesh; (seconds from the apply until every pod is ready and every proxy
        SYNCED, the slowest `status` answer meanwhile)."""
        self.sailctl("up", "-d", timeout=120)
        self.pid = self.status()["pid"]
        docs = [CONF] + [APP % {"j": j, "ns": NS, "port": APP_PORT} for j in range(m)]
        docs += [SERVICE % {"i": i, "j": i % m, "ns": NS, "port": APP_PORT} for i in range(n)]
        start = time.monotonic()
        self.sailctl("apply", "-f", "-", input="".join(docs), check=False)
        slowest = 0.0
        while time.monotonic() < start + 900:
            asked = time.monotonic()
            st = self.status()
            slowest = max(slowest, time.monotonic() - asked)
            pods = [p for p in st["pods"] if p["namespace"] == NS]
            synced = all(p.get("state", "SYNCED" if p["connected"] else "") == "SYNCED"
                         for p in st["proxies"].values())
            if len(pods) == m + 1 and all(p["ready"] for p in pods) and synced:
                return time.monotonic() - start, slowest
            time.sleep(0.5)
        raise RuntimeError(f"{m + 1} pods not ready and synced in 900 s")

    def resources_sent(self) -> int | None:
        """xDS resources sent to every proxy so far (None: this code does not count them)."""
        types = [t for p in self.status()["proxies"].values()
                 for t in p["status"].get("types", {}).values()]
        if not types or "sent_resources" not in types[0]:
            return None
        return sum(t["sent_resources"] for t in types)

    def log_lines(self) -> list[str]:
        logs = list(self.home.rglob("meshd.log"))
        return logs[0].read_text().splitlines() if logs else []

    def down(self) -> None:
        self.sailctl("down", check=False, timeout=180)
        shutil.rmtree(self.home, ignore_errors=True)


def run_cell(src: Path, n: int, m: int, changes: int) -> dict:
    mesh = Mesh(src)
    try:
        startup = mesh.up(n, m)
        rss_start = rss_mib(mesh.pid)
        seen: list[tuple[float, str]] = []
        argv = [sys.executable, "-c", "from sailmesh.cli.main import main; main()", "exec", "-i",
                "-n", NS, "deploy/client", "--", sys.executable, "-P", "-", "--poll",
                f"svc-0.{NS}"]
        with open(__file__, "rb") as source:
            poller = subprocess.Popen(argv, env=mesh.env, stdin=source, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)

        def read() -> None:
            assert poller.stdout is not None
            for line in poller.stdout:
                at, _, body = line.strip().partition(" ")
                seen.append((float(at), body))

        threading.Thread(target=read, daemon=True).start()
        time.sleep(3)
        effective, applied, cpu = [], [], []
        log_before = len(mesh.log_lines())
        sent_before = mesh.resources_sent()
        for k in range(1, changes + 1):
            cpu0, t0 = cpu_seconds(mesh.pid), time.time()
            result = mesh.sailctl("apply", "-f", "-", input=CHANGE % {"ns": NS, "k": k},
                                  check=False)
            applied.append(time.time() - t0)
            if result.returncode != 0:
                print(f"  change {k}: apply exited {result.returncode}: {result.stderr.strip()}",
                      file=sys.stderr)
            want = f"change-{k}"
            deadline = time.time() + 30
            while time.time() < deadline and not any(b == want and t >= t0 for t, b in seen):
                time.sleep(0.005)
            hit = next((t for t, b in seen if b == want and t >= t0), None)
            effective.append(hit - t0 if hit is not None else float("inf"))
            time.sleep(0.5)  # let the daemon settle before its CPU is read
            cpu.append(cpu_seconds(mesh.pid) - cpu0)
        sent_after = mesh.resources_sent()
        sent = (None if sent_before is None or sent_after is None
                else (sent_after - sent_before) / changes)
        pushes = [PUSH_LINE.search(line) for line in mesh.log_lines()[log_before:]]
        # (control plane, of which store and pods, proxies)
        shares = [(float(p[1]), float(p[2]), float(p[3])) for p in pushes if p]
        idle0 = cpu_seconds(mesh.pid)
        time.sleep(10)
        idle = (cpu_seconds(mesh.pid) - idle0) / 10
        poller.kill()
        return {"effective": effective, "applied": applied, "cpu": cpu, "shares": shares,
                "sent": sent, "startup": startup,
                "rss": (rss_start, rss_mib(mesh.pid)), "idle": idle}
    finally:
        mesh.down()


def report(cell: str, code: str, r: dict) -> str:
    eff, app = r["effective"], r["applied"]
    share = (f"{pct([s[0] for s in r['shares']], 50):.3f} (store and pods "
             f"{pct([s[1] for s in r['shares']], 50):.3f}) / "
             f"{pct([s[2] for s in r['shares']], 50):.3f}"
             if r["shares"] else "n/a (no push log)")
    sent = "n/a" if r["sent"] is None else f"{r['sent']:.0f}"
    return (f"{cell:>9} {code:>8}  effective p50 {pct(eff, 50):6.3f} p99 {pct(eff, 99):6.3f} "
            f"max {max(eff):6.3f} s | apply→ACK p50 {pct(app, 50):6.3f} s | control plane / "
            f"proxies p50 {share} s | xDS resources/change {sent} | CPU/change {pct(r['cpu'], 50):5.2f} s | RSS "
            f"{r['rss'][0]:4.0f}→{r['rss'][1]:4.0f} MiB | idle {r['idle']:.3f} cores | up: "
            f"ready and SYNCED {r['startup'][0]:.1f} s, slowest status {r['startup'][1]:.2f} s")


def main() -> None:
    if "--poll" in sys.argv:
        poll(sys.argv[sys.argv.index("--poll") + 1])
        return
    # A mesh left running holds the gateway's ports: stop it on SIGTERM too (`timeout`).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default="100x10,1000x30", help="NxM,...: Services x pods")
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--base", default="18fd7a3", help="commit to compare with ('' = none)")
    ap.add_argument("--only-base", action="store_true",
                    help="run the base commit alone (a cell too long for one run of both)")
    args = ap.parse_args()
    cells = [tuple(int(x) for x in c.split("x")) for c in args.cells.split(",")]
    repo = Path(__file__).resolve().parents[1]
    codes = {"this": repo / "src"}
    base_dir = None
    if args.base:
        base_dir = Path(tempfile.mkdtemp(prefix="smbench-base-", dir="/tmp"))
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(base_dir),
                        args.base], check=True, capture_output=True)
        codes = {args.base: base_dir / "src", **({} if args.only_base else codes)}
    print("machine: shared with other work unless stated; figures from this run only",
          flush=True)
    try:
        for index, (n, m) in enumerate(cells):
            order = list(codes.items())
            if index % 2:
                order.reverse()  # A B, then B A: drift falls on both codes
            for code, src in order:
                print(f"... {n} Services, {m} pods + 1 client, code {code}", file=sys.stderr,
                      flush=True)
                result = run_cell(src, n, m, args.changes)
                print("    effective per change: " + " ".join(f"{e:.2f}" for e in
                                                          result["effective"]), flush=True)
                print(report(f"{n}x{m}", code, result), flush=True)
    finally:
        if base_dir is not None:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force",
                            str(base_dir)], capture_output=True)


if __name__ == "__main__":
    main()
