"""Telemetry overhead: what Istio's standard metrics (counted in each Envoy by its stats access
loggers, read by the control plane from the proxies' admin endpoints) cost a sidecar pair
with mTLS, against the same pair with telemetry off, in one run.

    python bench/telemetry_overhead.py [--rate 1000] [--duration 8] [--rounds 3]

bench/sidecar_mtls.py's mesh, apps and open-loop load client; three arms on the same pods:
direct (no sidecars, the baseline), sidecars with telemetry off
(`meshConfig.defaultProviders.metrics: []`) and sidecars with telemetry on (the default),
switched with `sailctl install` between runs (each run waits until the client's Envoy has
the listeners of its arm) and alternated (direct, off, on, on, off, direct, ...) so that
drift on the machine falls on every arm. Each run gives its own p50/p90/p99 and the two
Envoys' CPU; an arm reports the minimum and the median over its runs (the minimum is the
least disturbed by other work on the machine). Reported: the latency each sidecar arm adds
to the direct one, the two Envoys' CPU per 1,000 req/s, the control plane's CPU, and how
far the telemetry arm is from the plain one (the target: added p50 latency and Envoy CPU
within 10%). Proof that telemetry ran: istio_requests_total grew by the requests the
telemetry runs sent, and not during the other runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sidecar_mtls import BASE_NS, MESH_NS, Bench, admin_get, summarize, wait_for_quiet

METRICS_URL = "http://127.0.0.1:15014/metrics"
# Each sidecar arm: its meshConfig.defaultProviders.metrics, and the logger its listeners show.
TELEMETRY = {"off": ("[]", None), "on": ('["prometheus"]', "access_loggers.stats")}
MARKERS = [m for _, m in TELEMETRY.values() if m]


def install_telemetry(bench: Bench, arm: str) -> None:
    bench.sailctl("install", "-f", "-", input=(
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\n"
        "metadata: {name: bench, namespace: istio-system}\n"
        f"spec:\n  meshConfig:\n    defaultProviders: {{metrics: {TELEMETRY[arm][0]}}}\n"))


def wait_for_listeners(bench: Bench, arm: str, limit_s: float = 30) -> None:
    """Until the client's Envoy serves the listeners of the arm (with its telemetry logger
    or none): the switch is an xDS push, not instant."""
    admin = bench.pods(MESH_NS)["client"]["admin"]
    want = TELEMETRY[arm][1]
    deadline = time.monotonic() + limit_s
    while True:
        dump = admin_get(admin, "/config_dump?resource=dynamic_listeners")
        shown = [m for m in MARKERS if m in dump]
        if shown == ([want] if want else []):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the client's Envoy did not switch telemetry to {arm}")
        time.sleep(0.2)


def requests_counted() -> float:
    with urllib.request.urlopen(METRICS_URL, timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("istio_requests_total{") and 'reporter="destination"' in line)


def per_run(result: dict, rate: int) -> dict[str, float]:
    s = summarize([result])
    cpu = s["cpu"]
    return {"p50": s["p50"], "p90": s["p90"], "p99": s["p99"],
            "envoy": (cpu.get("envoy client", 0.0) + cpu.get("envoy server", 0.0)) * 1000 / rate,
            "daemon": cpu["daemon"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="requests per second")
    parser.add_argument("--duration", type=float, default=8, help="seconds counted per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per arm")
    parser.add_argument("--warmup", type=float, default=2, help="seconds not counted per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--payload", type=int, default=1024, help="request and response bytes")
    parser.add_argument("--arms", nargs="+", default=["off", "on"], choices=sorted(TELEMETRY),
                        help="sidecar arms besides direct")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the benchmark needs root (local pods are network namespaces)")
    wait_for_quiet()
    # A mesh left running holds the gateway's ports: stop it on SIGTERM too (`timeout`).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(args)
    arms = ["direct", *args.arms]
    runs: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    counted = {arm: 0.0 for arm in args.arms}
    sent = {arm: 0 for arm in args.arms}
    errors = 0
    try:
        bench.up()
        order = (arms + arms[::-1]) * ((args.rounds + 1) // 2)
        for arm in order[: len(arms) * args.rounds]:
            if arm != "direct":
                install_telemetry(bench, arm)
                wait_for_listeners(bench, arm)
            print(f"measuring {arm} ({args.warmup:g}+{args.duration:g} s) ...", file=sys.stderr,
                  flush=True)
            before = requests_counted() if arm != "direct" else 0.0
            result = bench.run(BASE_NS if arm == "direct" else MESH_NS)
            errors += result["errors"]
            runs[arm].append(per_run(result, args.rate))
            if arm != "direct":
                counted[arm] += requests_counted() - before
                sent[arm] += len(result["latency_us"])
    finally:
        bench.down()
    report(args, runs, counted, sent, errors)


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, float]]],
           counted: dict[str, float], sent: dict[str, int], errors: int) -> None:
    def stat(arm: str, key: str) -> dict[str, float]:
        values = [r[key] for r in runs[arm]]
        return {"min": min(values), "median": statistics.median(values)}

    print(f"\nTelemetry overhead: {args.rate} req/s, {args.connections} connections, "
          f"POST {args.payload} B -> {args.payload} B, {args.rounds} x {args.duration:g} s per arm "
          f"(after {args.warmup:g} s warm-up each), {os.cpu_count()} cores, {errors} errors\n")
    sidecar_arms = [arm for arm in runs if arm != "direct"]
    print(f"{'per run (ms; Envoy cores per 1,000 req/s)':<44} {'p50':>7} {'p90':>7} {'p99':>7} {'envoys':>7}")
    for arm in runs:
        for i, r in enumerate(runs[arm]):
            print(f"  {arm:<8} run {i + 1:<31} {r['p50']:>7.3f} {r['p90']:>7.3f} {r['p99']:>7.3f}"
                  + (f" {r['envoy']:>7.3f}" if arm != "direct" else ""))
    print(f"\n{'added to direct (ms), min / median':<44} {'p50':>15} {'p90':>15} {'p99':>15}")
    added: dict[str, dict[str, dict[str, float]]] = {}
    for arm in sidecar_arms:
        added[arm] = {q: {m: stat(arm, q)[m] - stat("direct", q)[m] for m in ("min", "median")}
                      for q in ("p50", "p90", "p99")}
        print(f"  {'sidecars, telemetry ' + arm:<42} " + " ".join(
            f"{added[arm][q]['min']:>+7.3f}/{added[arm][q]['median']:<+7.3f}" for q in ("p50", "p90", "p99")))
    for arm in sidecar_arms:
        if arm == "off" or "off" not in sidecar_arms:
            continue
        print(f"\ntelemetry {arm} vs off{'':<10}min              median")
        verdicts = []
        for what, off, on in (
                ("added p50 (ms)", added["off"]["p50"], added[arm]["p50"]),
                ("both Envoys (cores/1k)", stat("off", "envoy"), stat(arm, "envoy"))):
            change = {m: 100 * (on[m] / off[m] - 1) for m in ("min", "median")}
            verdicts.append(change["median"])
            print(f"  {what:<24}" + "".join(
                f"{off[m]:.3f} -> {on[m]:.3f} ({change[m]:+.1f}%)  " for m in ("min", "median")))
        d_off, d_on = stat("off", "daemon"), stat(arm, "daemon")
        print(f"  {'control plane (cores)':<24}{d_off['median']:.3f} -> {d_on['median']:.3f} (median)")
        verdict = "within" if all(v <= 10 for v in verdicts) else "OVER"
        print(f"  target (median, added p50 and Envoy CPU within +10%): {verdict}")
    print("\nrequests counted by telemetry: " + ", ".join(
        f"{arm} {counted[arm]:.0f} of ~{sent[arm]}" for arm in sidecar_arms))


if __name__ == "__main__":
    main()
