"""Soak: steady load through the ingress gateway (HTTPS) and between two sidecars (mTLS)
while the gateway's TLS Secret is replaced and workload certificates renew; then the
restart time of a SIGKILLed Envoy and of a SIGKILLed app.

    python bench/soak.py [--minutes 5] [--rate 300] [--replacements 5] [--ttl 20s]

Half the rate goes to https://soak.example.com:8443 from the host (new connection every
20 requests, so handshakes meet each new certificate), half from a client pod to a
server pod through both sidecars (same pattern), each an open-loop fixed-rate generator.
During the run the gateway's Secret is replaced `--replacements` times (a new key and
certificate each time; the serial the gateway serves is checked after each), and the
workload certificate TTL is `--ttl` (renewal at half of it), so every identity renews many
times. Every 5 s the resident memory (RSS) of meshd and of every Envoy is sampled.

Reported: requests and failures of each stream; the served-certificate changes seen;
certificate renewals (serial changes of every identity in `sailctl status`); RSS of meshd
and of the Envoys at start and end and the slope (least squares, MB per minute); then
each SIGKILL (server sidecar Envoy, server app, three times each): the time until a new
process runs in the pod and until the client gets 200 through it again.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HOST = "soak.example.com"
PER_CONNECTION = 20

MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: soak, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: server-conf, namespace: soak}
data:
  default.conf: |
    server {
      listen 8080;
      access_log off;
      location / { return 200 "soak\\n"; }
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: server, namespace: soak}
spec:
  selector: {matchLabels: {app: server}}
  template:
    metadata: {labels: {app: server}}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports: [{containerPort: 8080}]
        volumeMounts: [{name: conf, mountPath: /etc/nginx/conf.d}]
      volumes: [{name: conf, configMap: {name: server-conf}}]
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: soak}
spec:
  selector: {app: server}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: soak}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      containers: [{name: client, image: curlimages/curl, command: [sleep, infinity]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: soak, namespace: soak}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: soak-cert}
    hosts: ["HOST"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: soak, namespace: soak}
spec:
  hosts: ["HOST"]
  gateways: [soak]
  http:
  - route: [{destination: {host: server.soak.svc.cluster.local, port: {number: 80}}}]
---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: soak, namespace: istio-system}
spec:
  meshConfig:
    defaultConfig:
      proxyMetadata: {SECRET_TTL: "@TTL@"}
""".replace("HOST", HOST)


# --- load (the same code runs on the host and, from stdin, inside the client pod) ---------

def run_load(spec: dict) -> dict:
    """Fixed-rate requests for `seconds`: request i is due at start + i/rate; `threads`
    workers each keep a connection for PER_CONNECTION requests. Returns counts."""
    host, port, rate, seconds = spec["host"], spec["port"], spec["rate"], spec["seconds"]
    tls_name = spec.get("sni")
    context = ssl._create_unverified_context() if tls_name else None
    total = int(rate * seconds)
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "failed": 0, "errors": [], "serials": []}
    start = time.monotonic() + 0.2

    def connect() -> socket.socket:
        s = socket.create_connection((host, port), timeout=5)
        if context is None:
            return s
        t = context.wrap_socket(s, server_hostname=tls_name)
        serial = t.getpeercert(binary_form=True)
        with lock:
            digest = hash(serial)
            if not state["serials"] or state["serials"][-1] != digest:
                state["serials"].append(digest)
        return t

    def request(s: socket.socket) -> None:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {tls_name or host}\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(h.split(":", 1)[1]) for h in lines[1:]
                      if h.lower().startswith("content-length:"))
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            body += chunk
        if lines[0].split()[1] != "200":
            raise OSError(lines[0])

    def worker() -> None:
        s = None
        used = 0
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= total:
                break
            if (wait := start + i / rate - time.monotonic()) > 0:
                time.sleep(wait)
            try:
                if s is None or used >= PER_CONNECTION:
                    if s is not None:
                        s.close()
                    s, used = connect(), 0
                request(s)
                used += 1
                with lock:
                    state["ok"] += 1
            except (OSError, StopIteration, ValueError) as exc:
                with lock:
                    state["failed"] += 1
                    if len(state["errors"]) < 5:
                        state["errors"].append(f"{time.monotonic() - start:.1f}s {exc}")
                if s is not None:
                    s.close()
                s = None
        if s is not None:
            s.close()

    threads = [threading.Thread(target=worker) for _ in range(spec["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"requests": state["ok"] + state["failed"], "failed": state["failed"],
            "errors": state["errors"], "certificates_seen": len(state["serials"])}


# --- the soak (host) --------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return float("nan")


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    xs = [t / 60 for t, _ in points]
    ys = [v for _, v in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home = Path(subprocess.run(["mktemp", "-d", "/tmp/smsoak-XXXXXX"], text=True,
                                        capture_output=True, check=True).stdout.strip())
        self.bin = Path(sys.executable).parent
        self.env = {**os.environ, "SAILMESH_HOME": str(self.home), "SAILMESH_INSTANCE": "sk",
                    "PATH": f"{self.bin}:{os.environ['PATH']}"}
        self.serials: dict[str, set[str]] = {}
        self.started = False

    def sailctl(self, *argv: str, input: str | None = None) -> str:
        done = subprocess.run([str(self.bin / "sailctl"), *argv], env=self.env, text=True,
                              capture_output=True, input=input, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"sailctl {' '.join(argv)}: {done.stdout}{done.stderr}")
        return done.stdout

    def status(self) -> dict:
        return json.loads(self.sailctl("status", "-o", "json"))

    def secret(self, index: int) -> str:
        work = self.home / f"cert-{index}"
        work.mkdir()
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-newkey",
                        "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-subj", f"/CN={HOST}",
                        "-addext", f"subjectAltName=DNS:{HOST}", "-keyout", str(work / "k"),
                        "-out", str(work / "c")], check=True, capture_output=True)
        data = {k: base64.b64encode((work / f).read_bytes()).decode()
                for k, f in (("tls.crt", "c"), ("tls.key", "k"))}
        return json.dumps({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                           "metadata": {"name": "soak-cert", "namespace": "istio-system"},
                           "data": data})

    def served_certificate(self) -> bytes:
        context = ssl._create_unverified_context()
        with socket.create_connection(("127.0.0.1", 8443), timeout=5) as s, \
                context.wrap_socket(s, server_hostname=HOST) as t:
            return t.getpeercert(binary_form=True) or b""

    def up(self) -> None:
        self.sailctl("apply", "-f", "-", input=MANIFESTS.replace("@TTL@", self.args.ttl))
        self.sailctl("apply", "-f", "-", input=self.secret(0))
        self.started = True
        self.sailctl("up", "-d")
        deadline = time.monotonic() + 90
        while not self.client_ok():
            if time.monotonic() > deadline:
                raise RuntimeError("the soak namespace did not serve within 90 s")
            time.sleep(1)

    def client_ok(self) -> bool:
        done = subprocess.run([str(self.bin / "sailctl"), "exec", "-n", "soak", "deploy/client",
                               "--", "curl", "-s", "-m", "2", "-o", "/dev/null", "-w",
                               "%{http_code}", "http://server.soak/"],
                              env=self.env, capture_output=True, text=True, timeout=30)
        return done.stdout.strip() == "200"

    def pod(self, app: str) -> dict:
        return next(p for p in self.status()["pods"]
                    if p["namespace"] == "soak" and p["name"].startswith(app + "-"))

    def processes(self, netns: str, comm: str) -> list[int]:
        from sailmesh.runtime.network import pids_in_netns

        found = []
        for pid in pids_in_netns(netns):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                    found.append(pid)
            except OSError:
                continue
        return sorted(found)

    def envoys(self) -> list[int]:
        return [pid for p in self.status()["pods"] if p.get("netns")
                for pid in self.processes(p["netns"], "envoy")]

    def note_serials(self) -> None:
        for ident in self.status()["ca"]["identities"]:
            self.serials.setdefault(f"{ident['namespace']}/{ident['pod']}", set()).add(
                ident["serial"])

    def soak(self) -> dict:
        seconds = self.args.minutes * 60
        half = self.args.rate / 2
        spec = {"rate": half, "seconds": seconds, "threads": 6}
        host_result: dict = {}
        host = threading.Thread(target=lambda: host_result.update(run_load(
            {**spec, "host": "127.0.0.1", "port": 8443, "sni": HOST})))
        argv = [str(self.bin / "sailctl"), "exec", "-i", "-n", "soak", "deploy/client", "--",
                sys.executable, "-P", "-", "--load",
                json.dumps({**spec, "host": "server.soak", "port": 80})]
        with open(__file__, "rb") as source:
            mesh = subprocess.Popen(argv, env=self.env, stdin=source, stdout=subprocess.PIPE,
                                    text=True)
        host.start()
        t0 = time.monotonic()
        daemon = int(self.status()["pid"])
        samples: dict[str, list[tuple[float, float]]] = {"meshd": [], "envoys": []}
        due = [seconds * (i + 0.5) / self.args.replacements for i in range(self.args.replacements)]
        replaced = []
        while (now := time.monotonic() - t0) < seconds + 1 and host.is_alive():
            samples["meshd"].append((now, rss_mb(daemon)))
            samples["envoys"].append((now, sum(rss_mb(p) for p in self.envoys())))
            self.note_serials()
            if due and now >= due[0]:
                due.pop(0)
                before = self.served_certificate()
                self.sailctl("apply", "-f", "-", input=self.secret(len(replaced) + 1))
                limit = time.monotonic() + 10
                while self.served_certificate() == before and time.monotonic() < limit:
                    time.sleep(0.1)
                replaced.append(self.served_certificate() != before)
            time.sleep(5 - (time.monotonic() - t0) % 5)
        host.join()
        out, _ = mesh.communicate(timeout=120)
        mesh_result = json.loads(out.strip().splitlines()[-1])
        return {"gateway": host_result, "mesh": mesh_result, "samples": samples,
                "replaced": replaced}

    def kill_and_time(self, comm: str, rounds: int = 3) -> list[tuple[float, float]]:
        """SIGKILL the server pod's `comm` (the oldest such process: nginx's master);
        seconds until a new one runs, and until the client gets 200 again."""
        times = []
        for _ in range(rounds):
            netns = self.pod("server")["netns"]
            old = self.processes(netns, comm)
            os.kill(old[0], signal.SIGKILL)
            t0 = time.monotonic()
            while not (set(self.processes(netns, comm)) - set(old)):
                if time.monotonic() - t0 > 30:
                    raise RuntimeError(f"{comm} was not restarted within 30 s")
                time.sleep(0.01)
            back = time.monotonic() - t0
            while not self.client_ok():
                if time.monotonic() - t0 > 30:
                    raise RuntimeError(f"the server did not serve within 30 s of killing {comm}")
                time.sleep(0.05)
            times.append((back, time.monotonic() - t0))
            time.sleep(2)
        return times

    def down(self) -> None:
        if self.started:
            subprocess.run([str(self.bin / "sailctl"), "down"], env=self.env,
                           capture_output=True, timeout=180)
        subprocess.run(["rm", "-rf", str(self.home)], check=False)


def report(args: argparse.Namespace, result: dict, renewals: int,
           kills: dict[str, list[tuple[float, float]]]) -> None:
    print(f"\nSoak: {args.minutes:g} min at {args.rate} req/s (half through the gateway over "
          f"HTTPS, half between two sidecars), SECRET_TTL {args.ttl}\n")
    for name, r in (("gateway (HTTPS)", result["gateway"]), ("sidecar -> sidecar", result["mesh"])):
        print(f"{name:<20} {r['requests']:>7} requests {r['failed']:>4} failed"
              + (f"  {r['errors']}" if r["failed"] else ""))
    total = result["gateway"]["requests"] + result["mesh"]["requests"]
    failed = result["gateway"]["failed"] + result["mesh"]["failed"]
    print(f"{'total':<20} {total:>7} requests {failed:>4} failed")
    replaced = result["replaced"]
    print(f"\ngateway Secret replacements: {len(replaced)}, served certificate changed after "
          f"{sum(replaced)}; certificates the load client saw: "
          f"{result['gateway']['certificates_seen']}")
    print(f"workload certificate renewals seen (serial changes): {renewals}")
    print(f"\n{'RSS (MB)':<14} {'start':>8} {'end':>8} {'slope MB/min':>13}")
    for name, points in result["samples"].items():
        usable = [(t, v) for t, v in points if v == v]
        print(f"{name:<14} {usable[0][1]:>8.1f} {usable[-1][1]:>8.1f} "
              f"{slope_per_minute(usable):>13.3f}")
    print("\nSIGKILL -> new process / serving again (s)")
    for name, times in kills.items():
        print(f"{name:<22} " + "  ".join(f"{a:.2f}/{b:.2f}" for a, b in times))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--load":
        print(json.dumps(run_load(json.loads(sys.argv[2]))), flush=True)
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--rate", type=int, default=300, help="requests per second, in total")
    parser.add_argument("--replacements", type=int, default=5, help="gateway Secret replacements")
    parser.add_argument("--ttl", default="20s", help="workload certificate SECRET_TTL")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the soak needs root (local pods are network namespaces)")
    soak = Soak(args)
    try:
        soak.up()
        soak.note_serials()
        result = soak.soak()
        renewals = sum(len(s) - 1 for s in soak.serials.values())
        kills = {"server sidecar Envoy": soak.kill_and_time("envoy"),
                 "server app (nginx)": soak.kill_and_time("nginx")}
    finally:
        soak.down()
    report(args, result, renewals, kills)


if __name__ == "__main__":
    main()
