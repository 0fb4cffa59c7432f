"""Sidecar mTLS benchmark: the latency and CPU that a client+server pair of istio-proxy sidecars
with mutual TLS adds, against the same two apps talking directly, measured in one run; and the
CA's certificate signing rate.

    python bench/sidecar_mtls.py [--rate 1000] [--duration 10] [--rounds 4] [--connections 16]
    python bench/sidecar_mtls.py --base COMMIT [--rounds 2] ...   (that commit against this one)

One mesh, two namespaces holding the same Deployments: `sidecar-mtls` is labelled
istio-injection=enabled (both pods get istio-proxy, with iptables capture, and auto mTLS between
them), `sidecar-base` is not (the baseline: the same client calls the same server directly,
through the same kind of Service VIP). The server is nginx answering 1 KB to any request: it
needs ~20 µs of CPU a request and a direct round trip takes ~60 µs, so what the proxies add
stands out, where the httpbin image (gunicorn + gevent, in Python) would put its own, larger
and noisier, time into both arms. The load client is bench/open_loop.py, run inside the
client pod (`sailctl exec -i ... python -P -`): an open-loop, fixed-rate generator in the
manner of wrk2, from one thread — request i is due at i/rate s, goes out on a free keep-alive
connection, and its latency counts from the *due* time, so a stall is not hidden by the client
waiting it out (coordinated omission). Each request is a POST of 1 KB answered with 1 KB, as in
Istio's test. The direct arm bounds the client's own tail: its p99 is the client, the kernel
and nginx together; the client's send lag (how late it sent against the schedule) is printed.
Beside them, the floor (bench/bare_envoy_pair.py; `--no-floor` skips it): the same load client
on the host, straight to an nginx on loopback and through a bare pair of Envoys with mutual TLS
and nothing of the mesh (static files, the sidecars' binary and flags). What that pair adds is
what two Envoys and an mTLS hop cost on this machine; what the sidecars add beyond it is the
mesh's own share (interception, network namespaces, Istio's listeners and filters, telemetry).
With it, the cost of a wake-up across CPUs on this machine (bench/cpu_wakeup.py).
The arms alternate (direct, sidecars, floor direct, floor pair, then backwards) so that drift
on the machine falls on all of them; each run starts with an uncounted warm-up (connections,
TLS handshakes).

Reported: p50/p90/p99/p99.9 latency of each arm, what the sidecars add (difference) and the
ratio, what they add run by run (each sidecar run against the direct run beside it; min and
median over the pairs, the min being the run least disturbed by other work), next to Istio's published +0.228 ms p90 / +0.298 ms p99 (its performance page, its
hardware); the CPU of the two Envoy processes (utime+stime from /proc/<pid>/stat over the
counted window) as cores per 1,000 req/s, with the CPU of everything else on the machine so
that a busy machine shows; proof that the hop was mTLS (every connection the server sidecar
accepted was a TLS handshake with a client certificate); then the CA's signing rate for ECDSA
P-256 and RSA 2048 (bench/ca_signing.py's measurement; run that file for the full matrix).
Before starting it waits (up to 10 min) for the gateway's ports 127.0.0.1:8080/8443 to be
free and for any other mesh to stop.

With `--base COMMIT` (bench/revisions.py) the whole run above is one round; rounds alternate
between that commit and this checkout (A B B A), and the report gives each side's median and
the ratio B/A (min and median over pairs of rounds) of the latency the sidecars add, their
CPU, and each pod's memory (RSS and PSS of all its processes, idle, after `up`).

Where the tail comes from, measured at commit 0719790 on this 2-vCPU virtual machine, idle
otherwise (`--rounds 4`, not printed by the benchmark, which shows only what it measures):
the sidecars add +0.368 ms p50 / +0.610 ms p99 (run by run, median +0.363 / +0.581; Istio's
page: +0.298 p99 on its hardware); the bare Envoy pair alone adds +0.278 / +0.457 (median), so
two Envoys and one mTLS hop take ~80% of it. The mesh's own share, ~+0.08 ms at p50 and
+0.07-0.24 ms at p99, is Istio's iptables interception and the pods' network namespaces
(bench/telemetry_overhead.py finds telemetry's share within noise). A round trip between processes on two
CPUs takes ~48 µs here and ~6 µs on one CPU (bench/cpu_wakeup.py): waking the other, idle
vCPU costs ~20 µs, and the sidecar path has four more such hand-offs than the direct one.
With both vCPUs kept out of idle (two SCHED_IDLE spinners, a throwaway experiment) the bare
pair added +0.20 ms p50 / +0.32 ms p99 instead of +0.33 / +0.46 (min of 2 runs each, same minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bare_envoy_pair import BarePair

INSTANCE = "bs"
MESH_NS, BASE_NS = "sidecar-mtls", "sidecar-base"
APP_PORT = 8080  # the server's container port, behind Service port 80
GATEWAY_PORTS = (8080, 8443)  # the mesh's ingress gateway binds these on 127.0.0.1
ISTIO_ADDED_MS = {"p90": 0.228, "p99": 0.298}  # Istio's performance page, sidecar pair
ISTIO_SIDECAR_VCPU = 0.20  # Istio 1.24's page: one sidecar, 2 workers, per 1,000 req/s of 1 KB
LOAD_CLIENT = Path(__file__).resolve().parent / "open_loop.py"  # run inside the client pod

NAMESPACES = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {MESH_NS}, labels: {{istio-injection: enabled}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {BASE_NS}}}
"""

# The app listens on 8080 behind Service port 80, as Istio's httpbin sample does. (Were its
# container port also a Service port in the mesh, the server sidecar would loop for now: its
# virtualInbound sets use_original_dst, which hands the connection to that port's outbound
# listener.)
APPS = """
---
apiVersion: v1
kind: ConfigMap
metadata: {name: server-conf, namespace: %(ns)s}
data:
  default.conf: |
    server {
      listen %(port)d;
      keepalive_requests 1000000;
      keepalive_timeout 300s;
      access_log off;
      location / { return 200 "%(body)s"; }
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: server, namespace: %(ns)s}
spec:
  replicas: 1
  selector: {matchLabels: {app: server}}
  template:
    # Istio's default stats matcher keeps no listener or HTTP stats; the mTLS proof reads them.
    metadata: {labels: {app: server}, annotations: {sidecar.istio.io/statsInclusionPrefixes: "listener,http.inbound_"}}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports: [{containerPort: %(port)d}]
        volumeMounts: [{name: conf, mountPath: /etc/nginx/conf.d}]
      volumes: [{name: conf, configMap: {name: server-conf}}]
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: %(ns)s}
spec:
  selector: {app: server}
  ports: [{name: http, port: 80, targetPort: %(port)d}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: %(ns)s}
spec:
  replicas: 1
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      containers:
      - name: client
        image: curlimages/curl
        command: ["sleep", "infinity"]
"""


# --- the benchmark (runs on the host) --------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its descendants (`sailctl exec` ends in nsenter, which forks
    the command when it enters the pod's PID namespace)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += cpu_seconds(p)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return total


def machine_cpu_seconds() -> dict[str, float]:
    """CPU time of the whole machine, all cores: busy (user, system and interrupts), the part
    of it in interrupts (irq + softirq: much of the kernel's packet processing, charged to no
    process), and the time the hypervisor gave to other guests (steal)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    return {"machine": (user + nice + system + irq + softirq) / hz, "irq": (irq + softirq) / hz,
            "steal": steal / hz}


def port_busy(port: int) -> bool:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def other_meshes() -> list[int]:
    """PIDs of mesh daemons running on this machine (another user's mesh or tests)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"sailmesh.meshd" in argv:
            pids.append(int(entry))
    return pids


def wait_for_quiet(limit_s: float = 600) -> None:
    """Only one mesh can hold the gateway's ports, and another mesh's load would be measured
    too: wait (up to `limit_s`) until the ports are free and no other mesh daemon runs."""
    deadline = time.monotonic() + limit_s
    while True:
        busy = [p for p in GATEWAY_PORTS if port_busy(p)]
        meshes = other_meshes()
        if not busy and not meshes:
            return
        if time.monotonic() > deadline:
            if busy:
                sys.exit(f"127.0.0.1:{busy} still in use after {limit_s:.0f} s (another mesh runs)")
            print(f"WARNING: other mesh daemons still run ({meshes}); measuring anyway",
                  file=sys.stderr, flush=True)
            return
        print(f"waiting for another mesh to stop (ports in use: {busy or 'none'}, daemons: "
              f"{meshes or 'none'}) ...", file=sys.stderr, flush=True)
        time.sleep(15)


def admin_get(sock_path: str, path: str) -> str:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    with s:
        s.connect(sock_path)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).split(b"\r\n\r\n", 1)[-1].decode()


def load_spec(args: argparse.Namespace, host: str, port: int) -> dict[str, object]:
    """bench/open_loop.py's input: where to send, and the load the command line asked for."""
    return {"host": host, "port": port, "rate": args.rate, "duration": args.duration,
            "warmup": args.warmup, "connections": args.connections, "payload": args.payload}


def measure(argv: list[str], watched: dict[str, int], env: dict[str, str], what: str) -> dict:
    """Run the load client (`argv`, fed bench/open_loop.py on stdin) and return its result with
    the CPU of the `watched` processes, of the client and of the machine, sampled at the
    START/END marks the client prints, as cores busy."""
    with open(LOAD_CLIENT, "rb") as source:
        proc = subprocess.Popen(argv, env=env, stdin=source, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    marks: dict[str, tuple[float, dict[str, float]]] = {}
    result = None
    for line in proc.stdout:
        line = line.strip()
        if line in ("START", "END"):
            sample = {k: cpu_seconds(p) for k, p in watched.items()}
            sample["client"] = tree_cpu_seconds(proc.pid)
            marks[line] = (time.monotonic(), {**sample, **machine_cpu_seconds()})
        elif line.startswith("{"):
            result = json.loads(line)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0 or result is None or len(marks) != 2:
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{err}")
    (t0, c0), (t1, c1) = marks["START"], marks["END"]
    result["cpu"] = {k: (c1[k] - c0[k]) / (t1 - t0) for k in c0}  # cores busy
    result["window_s"] = t1 - t0
    return result


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home = Path(tempfile.mkdtemp(prefix="smbench-sidecar-", dir="/tmp"))
        bindir = str(Path(sys.executable).parent)
        self.env = {**os.environ, "SAILMESH_HOME": str(self.home), "SAILMESH_INSTANCE": INSTANCE,
                    "PATH": f"{bindir}:{os.environ['PATH']}"}
        self.sailctl_bin = str(Path(sys.executable).parent / "sailctl")
        self.started = False
        self.daemon_pid = 0
        self.body = "x" * (args.payload - 1) + "\\n"  # nginx's `return` text: payload bytes

    def sailctl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        proc = subprocess.run([self.sailctl_bin, *args], env=self.env, text=True,
                              capture_output=True, input=input, timeout=180)
        if check and proc.returncode != 0:
            raise RuntimeError(f"sailctl {' '.join(args)} failed ({proc.returncode}):\n"
                               f"{proc.stdout}{proc.stderr}")
        return proc.stdout

    def status(self) -> dict:
        return json.loads(self.sailctl("status", "-o", "json"))

    def pods(self, ns: str) -> dict[str, dict]:
        return {p["name"].rsplit("-", 2)[0]: p for p in self.status()["pods"] if p["namespace"] == ns}

    def up(self) -> None:
        body = self.body
        manifests = NAMESPACES + "".join(APPS % {"ns": ns, "port": APP_PORT, "body": body}
                                         for ns in (MESH_NS, BASE_NS))
        self.sailctl("apply", "-f", "-", input=manifests)  # stored; takes effect on `up`
        self.started = True
        self.sailctl("up", "-d")
        deadline = time.monotonic() + 60
        for ns in (MESH_NS, BASE_NS):
            while True:
                pods = self.pods(ns)
                if len(pods) == 2 and all(p["ready"] for p in pods.values()) and self.probe(ns):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"namespace {ns} not serving within 60 s: "
                                       f"{json.dumps(pods, indent=1)}")
                time.sleep(0.5)
        self.daemon_pid = int(self.status()["pid"])
        mesh, base = self.pods(MESH_NS), self.pods(BASE_NS)
        if not (mesh["client"]["sidecar"] and mesh["server"]["sidecar"]):
            raise RuntimeError(f"{MESH_NS} pods were not injected: {mesh}")
        if base["client"]["sidecar"] or base["server"]["sidecar"]:
            raise RuntimeError(f"{BASE_NS} pods were injected: {base}")

    def probe(self, ns: str) -> bool:
        proc = subprocess.run(
            [self.sailctl_bin, "exec", "-n", ns, "deploy/client", "--", "curl", "-s", "-m", "2",
             "-o", "/dev/null", "-w", "%{http_code}", f"http://server.{ns}/"],
            env=self.env, capture_output=True, text=True, timeout=30)
        return proc.stdout.strip() == "200"

    def pod_pids(self, pod: dict) -> dict[str, list[int]]:
        """Processes in the pod's network namespace, by command name."""
        ns_stat = os.stat(f"/run/netns/{pod['netns']}")
        found: dict[str, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                st = os.stat(f"/proc/{entry}/ns/net")
                with open(f"/proc/{entry}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if (st.st_ino, st.st_dev) == (ns_stat.st_ino, ns_stat.st_dev):
                found.setdefault(comm, []).append(int(entry))
        return found

    def envoy_pids(self) -> dict[str, int]:
        pids = {}
        for role, pod in self.pods(MESH_NS).items():
            envoys = self.pod_pids(pod).get("envoy", [])
            if len(envoys) != 1:
                raise RuntimeError(f"expected one Envoy in {MESH_NS}/{pod['name']}, found {envoys}")
            pids[role] = envoys[0]
        return pids

    def server_pids(self, ns: str) -> list[int]:
        return self.pod_pids(self.pods(ns)["server"]).get("nginx", [])

    def run(self, ns: str) -> dict:
        """One load run from the client pod of `ns`."""
        spec = load_spec(self.args, f"server.{ns}", 80)
        watched = {f"envoy {r}": p for r, p in self.envoy_pids().items()} if ns == MESH_NS else {}
        watched |= {f"nginx {i}": p for i, p in enumerate(self.server_pids(ns))}
        watched["daemon"] = self.daemon_pid
        argv = [self.sailctl_bin, "exec", "-i", "-n", ns, "deploy/client", "--",
                sys.executable, "-P", "-", json.dumps(spec)]
        return measure(argv, watched, self.env, f"the load client in {ns}")

    def mtls_proof(self) -> dict[str, int | str]:
        server = self.pods(MESH_NS)["server"]
        stats = dict(line.split(": ", 1) for line in admin_get(server["admin"], "/stats").splitlines()
                     if ": " in line)
        prefix = "listener.0.0.0.0_15006.ssl."
        return {
            "handshakes": int(stats.get(prefix + "handshake", 0)),
            "versions": ",".join(k[len(prefix + "versions."):] for k, v in stats.items()
                                 if k.startswith(prefix + "versions.") and v != "0"),
            "ciphers": ",".join(k[len(prefix + "ciphers."):] for k, v in stats.items()
                                if k.startswith(prefix + "ciphers.") and v != "0"),
            "connections": int(stats.get("listener.0.0.0.0_15006.downstream_cx_total", 0)),
            "requests": sum(int(v) for k, v in stats.items()
                            if k.startswith("http.inbound_") and k.endswith("downstream_rq_total")),
            "no_client_cert": int(stats.get(prefix + "no_certificate", 0)),
        }

    def down(self) -> None:
        if self.started:
            subprocess.run([self.sailctl_bin, "down"], env=self.env, capture_output=True, timeout=180)
        shutil.rmtree(self.home, ignore_errors=True)


def ca_rates(seconds: float) -> list[tuple[str, str, float]]:
    """Certificates/s as the CA issues them, CA key type = workload key type, with bench/
    ca_signing.py's measurement: 'sign' (the workload's key exists, as with a CSR) and
    'keygen+sign' (a fresh key per certificate)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ca_signing as cs  # bench/ca_signing.py

    rows = []
    for key_type in cs.KEY_TYPES:
        ca = cs.CertificateAuthority.self_signed("cluster.local", key_type, cs.NOW)
        premade = cs.generate_key(key_type)
        rng = cs.random.Random(0)

        def sign(ca=ca, key_type=key_type, premade=premade, rng=rng):
            cs.issue_workload_cert(ca, spiffe_id=cs.SVID, key_type=key_type, now=cs.NOW,
                                   key=premade, rng=rng)

        def keygen_sign(ca=ca, key_type=key_type, rng=rng):
            cs.issue_workload_cert(ca, spiffe_id=cs.SVID, key_type=key_type, now=cs.NOW, rng=rng)

        rows.append((key_type, "sign", cs.cpu_rate(seconds, sign)))
        rows.append((key_type, "keygen+sign", cs.cpu_rate(seconds, keygen_sign)))
    return rows


def summarize(runs: list[dict]) -> dict:
    lat = sorted(v for r in runs for v in r["latency_us"] if not math.isnan(v))
    svc = sorted(v for r in runs for v in r["service_us"] if not math.isnan(v))
    lag = sorted(v for r in runs for v in r["lag_us"])
    out = {f"p{q}": percentile(lat, q) / 1000 for q in (50, 90, 99, 99.9)}
    out |= {f"svc_p{q}": percentile(svc, q) / 1000 for q in (50, 99)}
    out["lag_p99"] = percentile(lag, 99) / 1000
    out["n"] = len(lat)
    out["errors"] = sum(r["errors"] for r in runs)
    out["first_errors"] = [e for r in runs for e in r["first_errors"]][:3]
    cpu: dict[str, float] = {}
    for r in runs:
        for k, v in r["cpu"].items():
            name = "nginx" if k.startswith("nginx") else k  # master + worker
            cpu[name] = cpu.get(name, 0.0) + v / len(runs)
    out["cpu"] = cpu
    return out


def added_per_pair(base_runs: list[dict], mesh_runs: list[dict]) -> dict[str, list[float]]:
    """What the sidecars add, run by run: each sidecar run against the direct run next to it
    (the arms go direct, sidecars, sidecars, direct, ...: pair k is the k-th run of each)."""
    pairs = [(summarize([b]), summarize([m])) for b, m in zip(base_runs, mesh_runs, strict=True)]
    return {q: [m[q] - b[q] for b, m in pairs] for q in ("p50", "p90", "p99")}


BARE_DIRECT, BARE_PAIR = "bare-direct", "bare-pair"
ARMS = {BASE_NS: "direct", MESH_NS: "sidecars+mTLS", BARE_DIRECT: "direct on loopback (floor)",
        BARE_PAIR: "bare Envoy pair (floor)"}


def arm_order(rounds: int, floor: bool) -> list[str]:
    """`rounds` runs of each arm, alternating forwards and backwards (A B C D D C B A ...) so
    that drift on the machine falls on every arm."""
    block = [BASE_NS, MESH_NS, BARE_DIRECT, BARE_PAIR] if floor else [BASE_NS, MESH_NS]
    order: list[str] = []
    for i in range(rounds):
        order += block if i % 2 == 0 else block[::-1]
    return order


def run_bare(args: argparse.Namespace, bare: BarePair, arm: str) -> dict:
    """One load run from this host straight to the loopback nginx, or through the bare pair."""
    port = bare.ports["nginx"] if arm == BARE_DIRECT else bare.ports["client_envoy"]
    spec = load_spec(args, "127.0.0.1", port)
    watched = {k: p for k, p in bare.pids().items() if k.startswith("envoy ")}
    watched |= {f"nginx {i}": p for i, p in enumerate(bare.nginx_pids())}
    return measure([sys.executable, "-P", "-", json.dumps(spec)], watched, dict(os.environ),
                   f"the load client of the {ARMS[arm]} arm")


def bare_mtls_proof(bare: BarePair) -> dict[str, int]:
    stats = dict(line.split(": ", 1) for line in
                 admin_get(str(bare.workdir / "server.sock"), "/stats").splitlines() if ": " in line)
    prefix = f"listener.127.0.0.1_{bare.ports['server_envoy']}."
    return {"handshakes": int(stats.get(prefix + "ssl.handshake", 0)),
            "connections": int(stats.get(prefix + "downstream_cx_total", 0)),
            "no_client_cert": int(stats.get(prefix + "ssl.no_certificate", 0)),
            "requests": int(stats.get("http.inbound.downstream_rq_total", 0))}


def report_floor(args: argparse.Namespace, floor: dict, pairs: dict[str, list[float]],
                 proof: dict[str, int]) -> None:
    """The bare pair beside the sidecars: what two Envoys and an mTLS hop cost on this machine,
    and what the sidecars add beyond that (their run-by-run added latency minus the bare
    pair's, pair k against pair k)."""
    import cpu_wakeup  # bench/cpu_wakeup.py, on sys.path since main()

    direct, pair = floor["direct"], floor["pair"]
    print("\nThe floor: a bare Envoy pair with mTLS and nothing of the mesh (bench/bare_envoy_pair.py:"
          "\nstatic config, loopback, the sidecars' Envoy binary and flags), same run, interleaved")
    print(f"{'latency (ms)':<30} {'p50':>7} {'p90':>7} {'p99':>7} {'p99.9':>7} {'requests':>9} {'errors':>7}")
    for name, s in (("direct to nginx on loopback", direct), ("through the bare pair", pair)):
        print(f"{name:<30} {s['p50']:>7.3f} {s['p90']:>7.3f} {s['p99']:>7.3f} {s['p99.9']:>7.3f}"
              f" {s['n']:>9} {s['errors']:>7}")
    fp = floor["added_per_pair"]
    for name, agg in (("added by the bare pair: min", min), ("                     median", statistics.median)):
        print(f"{name:<30} " + " ".join(f"{agg(fp[q]):>+7.3f}" for q in ("p50", "p90", "p99")))
    beyond = {q: [m - f for m, f in zip(pairs[q], fp[q], strict=True)] for q in ("p50", "p90", "p99")}
    for name, agg in (("sidecars beyond it: min", min), ("                    median", statistics.median)):
        print(f"{name:<30} " + " ".join(f"{agg(beyond[q]):>+7.3f}" for q in ("p50", "p90", "p99")))
    envoys = (pair["cpu"]["envoy client"] + pair["cpu"]["envoy server"]) * 1000 / args.rate
    print(f"both bare Envoys: {envoys:.3f} cores per 1,000 req/s; their hop: {proof['handshakes']} "
          f"TLS handshakes with a client certificate for {proof['connections']} connections, "
          f"{proof['requests']} requests")
    print(f"this machine (bench/cpu_wakeup.py): {cpu_wakeup.describe(floor['wakeup_us'])};\n"
          "  a request makes 2 wake-ups without sidecars and 6 through them")


def report(args: argparse.Namespace, base: dict, mesh: dict, pairs: dict[str, list[float]],
           proof: dict, ca: list[tuple[str, str, float]]) -> None:
    per_k = 1000 / args.rate
    print(f"\nSidecar mTLS benchmark: {args.rate} req/s, {args.connections} keep-alive connections, "
          f"POST {args.payload} B -> {args.payload} B, {args.rounds} x {args.duration:g} s per arm "
          f"(after {args.warmup:g} s warm-up each), {os.cpu_count()} cores\n")
    print(f"{'latency (ms)':<30} {'p50':>7} {'p90':>7} {'p99':>7} {'p99.9':>7} {'requests':>9} {'errors':>7}")
    for name, s in (("direct (baseline)", base), ("client+server sidecars, mTLS", mesh)):
        print(f"{name:<30} {s['p50']:>7.3f} {s['p90']:>7.3f} {s['p99']:>7.3f} {s['p99.9']:>7.3f}"
              f" {s['n']:>9} {s['errors']:>7}" + (f"  {s['first_errors']}" if s["errors"] else ""))
    d = {q: mesh[q] - base[q] for q in ("p50", "p90", "p99", "p99.9")}
    print(f"{'added by the sidecars':<30} " + " ".join(f"{'+' if d[q] >= 0 else ''}{d[q]:>6.3f}"
                                                        for q in d))
    print(f"{'ratio sidecars / direct':<30} " + " ".join(f"{mesh[q] / base[q]:>6.2f}x" for q in d))
    print(f"{'Istio published (added)':<30} {'':>7} {'+' + str(ISTIO_ADDED_MS['p90']):>7}"
          f" {'+' + str(ISTIO_ADDED_MS['p99']):>7}   (Istio's page, 1 KB at 1,000 req/s, its hardware)")
    print(f"{'added, run by run: min':<30} " + " ".join(
        f"{min(pairs[q]):>+7.3f}" for q in ("p50", "p90", "p99")))
    print(f"{'                     median':<30} " + " ".join(
        f"{statistics.median(pairs[q]):>+7.3f}" for q in ("p50", "p90", "p99"))
          + f"   ({len(pairs['p50'])} pairs of 1 direct + 1 sidecar run)")
    print(f"\nlatency from the actual send (no queueing in the client): p50 {base['svc_p50']:.3f} -> "
          f"{mesh['svc_p50']:.3f} ms, p99 {base['svc_p99']:.3f} -> {mesh['svc_p99']:.3f} ms; "
          f"client send lag p99 {base['lag_p99']:.3f} / {mesh['lag_p99']:.3f} ms")

    env = mesh["cpu"]
    pair = env["envoy client"] + env["envoy server"]
    print(f"\nCPU (cores busy during the measured window; per 1,000 req/s = x {per_k:.2f})")
    print(f"  client sidecar Envoy  {env['envoy client']:.3f} cores = "
          f"{env['envoy client'] * per_k:.3f} per 1,000 req/s")
    print(f"  server sidecar Envoy  {env['envoy server']:.3f} cores = "
          f"{env['envoy server'] * per_k:.3f} per 1,000 req/s")
    print(f"  both Envoys           {pair:.3f} cores = {pair * per_k:.3f} per 1,000 req/s "
          f"(Istio 1.24: ~{ISTIO_SIDECAR_VCPU} vCPU per sidecar, ~{2 * ISTIO_SIDECAR_VCPU:.2f} a pair)")
    print(f"  server app (nginx)    {base['cpu'].get('nginx', 0):.3f} cores direct, "
          f"{mesh['cpu'].get('nginx', 0):.3f} behind the sidecar")
    print(f"  load client (Python)  {base['cpu']['client']:.3f} cores direct, "
          f"{mesh['cpu']['client']:.3f} through the sidecars")
    print(f"  kernel irq+softirq    {base['cpu']['irq']:.3f} cores direct, "
          f"{mesh['cpu']['irq']:.3f} with sidecars (packet processing, charged to no process)")
    print(f"  mesh daemon (meshd)   {base['cpu']['daemon']:.3f} cores direct, "
          f"{mesh['cpu']['daemon']:.3f} with sidecars")
    # Busy time of the machine minus everything above; tick-based accounting of processes and
    # of the machine differ by a few hundredths of a core, hence the floor at 0.
    others = {name: max(0.0, s["cpu"]["machine"] - sum(v for k, v in s["cpu"].items()
                                                       if k not in ("machine", "steal")))
              for name, s in (("direct", base), ("sidecars", mesh))}
    print(f"  everything else       {others['direct']:.3f} cores during the direct runs, "
          f"{others['sidecars']:.3f} during the sidecar runs (other users of the machine)")
    print(f"  hypervisor steal      {base['cpu']['steal']:.3f} cores during the direct runs, "
          f"{mesh['cpu']['steal']:.3f} during the sidecar runs (this VM's cores given to others)")
    if max(others.values()) > 0.25 or max(base["cpu"]["steal"], mesh["cpu"]["steal"]) > 0.25:
        print("  WARNING: the machine was busy with other work; latency tails are unreliable. "
              "Rerun when it is idle.")
    print(f"\nmTLS on the hop: the server sidecar accepted {proof['connections']} connections with "
          f"{proof['handshakes']} TLS handshakes ({proof['versions']}, {proof['ciphers']}; "
          f"{proof['no_client_cert']} without a client certificate) and served {proof['requests']} "
          f"requests")
    if ca:
        print("\nCA signing (certs per CPU second, bench/ca_signing.py's measurement; CA key = "
              "workload key)")
        print(f"  {'key type':<12} {'mode':<12} {'certs/s':>9}")
        for key_type, mode, r in ca:
            print(f"  {key_type:<12} {mode:<12} {r:>9.0f}")


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import cpu_wakeup  # bench/cpu_wakeup.py
    import revisions  # bench/revisions.py
    from bare_envoy_pair import BarePair  # bench/bare_envoy_pair.py
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="requests per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds counted per run")
    parser.add_argument("--rounds", type=int, default=4, help="runs per arm (alternating)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds not counted per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--payload", type=int, default=1024, help="request and response bytes")
    parser.add_argument("--ca-seconds", type=float, default=1.0, help="0 skips the CA part")
    parser.add_argument("--base", metavar="COMMIT",
                        help="compare with this commit, in alternating rounds (A B B A)")
    parser.add_argument("--json", action="store_true", help="print one JSON line of results")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the bare Envoy pair (bench/bare_envoy_pair.py)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the benchmark needs root (local pods are network namespaces)")
    if args.base:
        compare_with_base(args)
        return
    wait_for_quiet()
    bench = Bench(args)
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    memory: dict[str, dict[str, float]] = {}
    bare = None
    try:
        bench.up()
        memory = {f"{ns}/{role}": revisions.pod_memory(pod["netns"])
                  for ns in (MESH_NS, BASE_NS) for role, pod in bench.pods(ns).items()}
        if args.floor:
            (bench.home / "bare").mkdir()
            bare = BarePair(bench.home / "bare", bench.body)
            bare.start()
        for arm in arm_order(args.rounds, args.floor):
            print(f"measuring {ARMS[arm]} ({args.warmup:g}+{args.duration:g} s) ...",
                  file=sys.stderr, flush=True)
            runs[arm].append(bench.run(arm) if arm in (BASE_NS, MESH_NS) else run_bare(args, bare, arm))
        proof = bench.mtls_proof()
        bare_proof = bare_mtls_proof(bare) if bare else None
    finally:
        if bare:
            bare.stop()
        bench.down()
    if not proof["handshakes"] or proof["handshakes"] != proof["connections"] or proof["no_client_cert"]:
        sys.exit(f"the sidecar hop was not mTLS: {proof}")
    if bare_proof is not None and (not bare_proof["handshakes"] or bare_proof["no_client_cert"]):
        sys.exit(f"the bare pair's hop was not mTLS: {bare_proof}")
    base, mesh = summarize(runs[BASE_NS]), summarize(runs[MESH_NS])
    pairs = added_per_pair(runs[BASE_NS], runs[MESH_NS])
    floor = None
    if args.floor:
        floor = {"direct": summarize(runs[BARE_DIRECT]), "pair": summarize(runs[BARE_PAIR]),
                 "added_per_pair": added_per_pair(runs[BARE_DIRECT], runs[BARE_PAIR])}
        floor["added"] = {q: floor["pair"][q] - floor["direct"][q] for q in ("p50", "p90", "p99")}
        floor["wakeup_us"] = cpu_wakeup.measure()  # the mesh is down: the machine is quiet
    if args.json:
        print(json.dumps({"direct": base, "sidecars": mesh, "memory": memory,
                          "added": {q: mesh[q] - base[q] for q in ("p50", "p90", "p99")},
                          "added_per_pair": pairs, "floor": floor,
                          "envoy_cores_per_1k": (mesh["cpu"]["envoy client"]
                                                 + mesh["cpu"]["envoy server"]) * 1000 / args.rate}))
        return
    ca = ca_rates(args.ca_seconds) if args.ca_seconds > 0 else []
    report(args, base, mesh, pairs, proof, ca)
    if floor:
        report_floor(args, floor, pairs, bare_proof)


def compare_with_base(args: argparse.Namespace) -> None:
    """Rounds of this benchmark alternating between `args.base` and this checkout."""
    import revisions  # bench/revisions.py, on sys.path since main()

    argv = ["--rate", str(args.rate), "--duration", str(args.duration), "--rounds", "1",
            "--warmup", str(args.warmup), "--connections", str(args.connections),
            "--payload", str(args.payload), "--ca-seconds", "0", "--no-floor"]
    results = revisions.run_rounds(__file__, argv, args.base, args.rounds)
    print(f"\nSidecar mTLS benchmark, A = {args.base}, B = this checkout: {args.rounds} rounds "
          f"each (A B B A), {args.rate} req/s, {args.duration:g} s per arm and round\n")
    rows = [(f"{arm}.{q}", f"{name} {q} (ms)", ".3f")
            for arm, name in (("direct", "direct"), ("sidecars", "sidecars+mTLS"))
            for q in ("p50", "p90", "p99")]
    rows += [(f"added.{q}", f"added by the sidecars {q} (ms)", ".3f") for q in ("p50", "p90", "p99")]
    rows += [("envoy_cores_per_1k", "both Envoys, cores per 1,000 req/s", ".3f")]
    pods = sorted(results["B"][0]["memory"])
    for metric in ("rss", "pss"):
        rows += [(f"memory.{pod}.{metric}", f"pod {pod} {metric.upper()} (MB)", ".1f")
                 for pod in pods]
    rows += [(f"memory.{pod}.processes", f"pod {pod} processes", ".0f") for pod in pods]
    revisions.compare(results, rows)
    errors = sum(r[arm]["errors"] for side in results.values() for r in side
                 for arm in ("direct", "sidecars"))
    print(f"\nfailed requests over all rounds: {errors}")


if __name__ == "__main__":
    main()
