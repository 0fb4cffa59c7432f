"""Telemetry overhead: what Istio's standard metrics (gRPC access-log entries streamed to the
control plane) cost a sidecar pair with mTLS, against the same pair with telemetry off, in
one run.

    python bench/telemetry_overhead.py [--rate 1000] [--duration 10] [--rounds 2]

bench/sidecar_mtls.py's mesh, apps and open-loop load client; three arms on the same pods:
direct (no sidecars, the baseline), sidecars with telemetry off
(`meshConfig.defaultProviders.metrics: []`) and sidecars with telemetry on (the default),
switched with `sailctl install` between runs and alternated (direct, off, on, on, off,
direct, ...) so that drift on the machine falls on every arm. Reported: the latency each
sidecar arm adds to the direct one (p50/p90/p99), the two Envoys' CPU per 1,000 req/s, the
control plane's CPU, and how far the telemetry arm is from the plain one (the target: added
p50 latency and Envoy CPU within 10%). Proof that telemetry ran: istio_requests_total grew
by the requests the telemetry runs sent, and not during the other runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sidecar_mtls import BASE_NS, MESH_NS, Bench, summarize, wait_for_quiet

METRICS_URL = "http://127.0.0.1:15014/metrics"
TELEMETRY = {True: '["prometheus"]', False: "[]"}


def install_telemetry(bench: Bench, on: bool) -> None:
    bench.sailctl("install", "-f", "-", input=(
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\n"
        "metadata: {name: bench, namespace: istio-system}\n"
        f"spec:\n  meshConfig:\n    defaultProviders: {{metrics: {TELEMETRY[on]}}}\n"))


def requests_counted() -> float:
    with urllib.request.urlopen(METRICS_URL, timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("istio_requests_total{") and 'reporter="destination"' in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="requests per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds counted per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per arm")
    parser.add_argument("--warmup", type=float, default=2, help="seconds not counted per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--payload", type=int, default=1024, help="request and response bytes")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the benchmark needs root (local pods are network namespaces)")
    wait_for_quiet()
    bench = Bench(args)
    runs: dict[str, list[dict]] = {"direct": [], "off": [], "on": []}
    counted = {"off": 0.0, "on": 0.0}
    sent = {"off": 0, "on": 0}
    try:
        bench.up()
        order = ["direct", "off", "on", "on", "off", "direct"] * ((args.rounds + 1) // 2)
        for arm in order[: 3 * args.rounds]:
            if arm != "direct":
                install_telemetry(bench, arm == "on")
            print(f"measuring {arm} ({args.warmup:g}+{args.duration:g} s) ...", file=sys.stderr,
                  flush=True)
            before = requests_counted()
            result = bench.run(BASE_NS if arm == "direct" else MESH_NS)
            runs[arm].append(result)
            if arm != "direct":
                time.sleep(1.5)  # the access-log flush
                counted[arm] += requests_counted() - before
                sent[arm] += len(result["latency_us"])
    finally:
        bench.down()
    base, off, on = (summarize(runs[a]) for a in ("direct", "off", "on"))
    print(f"\nTelemetry overhead: {args.rate} req/s, {args.connections} connections, "
          f"{args.rounds} x {args.duration:g} s per arm, {os.cpu_count()} cores\n")
    print(f"{'latency added to direct (ms)':<34} {'p50':>7} {'p90':>7} {'p99':>7}")
    added = {}
    for name, s in (("sidecars, telemetry off", off), ("sidecars, telemetry on", on)):
        added[name] = {q: s[q] - base[q] for q in ("p50", "p90", "p99")}
        print(f"{name:<34} " + " ".join(f"{added[name][q]:>+7.3f}" for q in ("p50", "p90", "p99")))
    per_k = 1000 / args.rate
    cpu = {name: (s["cpu"]["envoy client"] + s["cpu"]["envoy server"]) * per_k
           for name, s in (("off", off), ("on", on))}
    print(f"\nboth Envoys, cores per 1,000 req/s: off {cpu['off']:.3f}, on {cpu['on']:.3f}"
          f" ({100 * (cpu['on'] / cpu['off'] - 1):+.1f}%)")
    print(f"control plane (meshd), cores: off {off['cpu']['daemon']:.3f}, on {on['cpu']['daemon']:.3f}")
    p50_off, p50_on = added["sidecars, telemetry off"]["p50"], added["sidecars, telemetry on"]["p50"]
    print(f"added p50: off {p50_off:.3f} ms, on {p50_on:.3f} ms ({100 * (p50_on / p50_off - 1):+.1f}%)")
    print(f"\nrequests counted by telemetry: {counted['on']:.0f} of ~{sent['on']} sent with it on,"
          f" {counted['off']:.0f} with it off")


if __name__ == "__main__":
    main()
