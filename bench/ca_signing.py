"""CA signing benchmark: workload certificates per CPU second, as `issue_workload_cert` makes them.

    python bench/ca_signing.py [--seconds 1] [--rounds 6] [--json]

For each CA key type (ECDSA P-256, the default; RSA 2048, Istio's) and each workload key type
(ECDSA P-256, RSA 2048), two cells on one core:
  - keygen+sign: a fresh workload key per certificate (what a proxy's first request costs),
  - sign:        a pre-made key, signing alone (the CA's share when the proxy sends a CSR).
Each includes building the X.509-SVID and PEM-encoding the chain and key.

The cells alternate: every round runs each cell for `--seconds`, in forward order on even
rounds and backward on odd ones (A B C … C B A …), so that drift on a shared machine falls
on all of them. Rates count CPU time of this process (time.process_time), not wall time, so
time the scheduler gives to others is not counted as signing time. Printed per cell: the
median and minimum certs per CPU second over the rounds, and the ratio to ECDSA `sign` under
the same CA, taken per round (cells of one round ran close in time) and then the median.
Every figure printed is measured in this run.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sailmesh.ca import CertificateAuthority, issue_workload_cert, spiffe_id
from sailmesh.ca.keys import KEY_TYPES, generate_key

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SVID = spiffe_id("cluster.local", "bench", "workload")


def cpu_rate(seconds: float, issue_one: Callable[[], object]) -> float:
    """Certificates per CPU second over at least `seconds` of CPU (and 5 certificates)."""
    count, start = 0, time.process_time()
    while True:
        issue_one()
        count += 1
        used = time.process_time() - start
        if used >= seconds and count >= 5:
            return count / used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU time per cell and round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", action="store_true", help="print results as JSON too")
    args = parser.parse_args()

    rng = random.Random(0)
    cells: list[tuple[str, str, str, Callable[[], object]]] = []
    for ca_key in KEY_TYPES:
        ca = CertificateAuthority.self_signed("cluster.local", ca_key, NOW)
        for leaf_key in KEY_TYPES:
            premade = generate_key(leaf_key)
            cells.append((ca_key, leaf_key, "keygen+sign", functools.partial(
                issue_workload_cert, ca, spiffe_id=SVID, key_type=leaf_key, now=NOW, rng=rng)))
            cells.append((ca_key, leaf_key, "sign", functools.partial(
                issue_workload_cert, ca, spiffe_id=SVID, key_type=leaf_key, now=NOW,
                key=premade, rng=rng)))
    for *_, fn in cells:
        fn()  # warm-up: first-use costs (OpenSSL tables, imports) are not the steady state
    rates: list[list[float]] = [[] for _ in cells]
    for round_ in range(args.rounds):
        order = range(len(cells)) if round_ % 2 == 0 else reversed(range(len(cells)))
        for i in order:
            rates[i].append(cpu_rate(args.seconds, cells[i][3]))
    results = []
    for i, (ca_key, leaf_key, mode, _) in enumerate(cells):
        base = next(j for j, c in enumerate(cells)
                    if c[0] == ca_key and c[1] == "ecdsa-p256" and c[2] == "sign")
        ratios = [a / b for a, b in zip(rates[i], rates[base], strict=True)]
        results.append({"ca": ca_key, "workload_key": leaf_key, "mode": mode,
                        "median_per_cpu_s": statistics.median(rates[i]),
                        "min_per_cpu_s": min(rates[i]),
                        "ratio_vs_ecdsa_sign": statistics.median(ratios),
                        "rounds": args.rounds})
    print(f"{'CA key':<12} {'workload key':<13} {'mode':<12} {'median/CPU s':>13} "
          f"{'min/CPU s':>10} {'ratio':>7}")
    for r in results:
        print(f"{r['ca']:<12} {r['workload_key']:<13} {r['mode']:<12} "
              f"{r['median_per_cpu_s']:>13.1f} {r['min_per_cpu_s']:>10.1f} "
              f"{r['ratio_vs_ecdsa_sign']:>7.3f}")
    print(f"{args.rounds} interleaved rounds of {args.seconds:g} CPU s per cell; ratio = median "
          "over rounds of certs/CPU s divided by ECDSA P-256 'sign' under the same CA key")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
