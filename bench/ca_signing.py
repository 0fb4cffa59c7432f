"""CA signing benchmark: workload certificates per second, as `issue_workload_cert` makes them.

    python bench/ca_signing.py [--seconds 2] [--json]

For each CA key type (ECDSA P-256, the default; RSA 2048, Istio's) and each workload key type
(ECDSA P-256, RSA 2048), two measurements on one core:
  - keygen+sign: a fresh workload key per certificate (what a proxy's first request costs),
  - sign:        a pre-made key, signing alone (the CA's share when the proxy sends a CSR).
Each includes building the X.509-SVID and PEM-encoding the chain and key. The ratio column is
each rate divided by ECDSA `sign` under the same CA (the baseline, 1.00).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sailmesh.ca import CertificateAuthority, issue_workload_cert, spiffe_id
from sailmesh.ca.keys import KEY_TYPES, generate_key

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SVID = spiffe_id("cluster.local", "bench", "workload")


def rate(seconds: float, issue_one) -> tuple[float, int]:
    """Certificates per second over at least `seconds` (and at least 5 certificates)."""
    issue_one()  # warm-up: first-use costs (OpenSSL tables, imports) are not the steady state
    count, start = 0, time.perf_counter()
    while True:
        issue_one()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 5:
            return count / elapsed, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--json", action="store_true", help="print results as JSON too")
    args = parser.parse_args()

    rng = random.Random(0)
    results = []
    for ca_key in KEY_TYPES:
        ca = CertificateAuthority.self_signed("cluster.local", ca_key, NOW)
        rows = []
        for leaf_key in KEY_TYPES:
            premade = generate_key(leaf_key)

            def keygen_and_sign(leaf_key=leaf_key, ca=ca):
                issue_workload_cert(ca, spiffe_id=SVID, key_type=leaf_key, now=NOW, rng=rng)

            def sign_only(leaf_key=leaf_key, ca=ca, premade=premade):
                issue_workload_cert(ca, spiffe_id=SVID, key_type=leaf_key, now=NOW, key=premade, rng=rng)

            for mode, fn in (("keygen+sign", keygen_and_sign), ("sign", sign_only)):
                per_second, count = rate(args.seconds, fn)
                rows.append(
                    {
                        "ca": ca_key,
                        "workload_key": leaf_key,
                        "mode": mode,
                        "certs_per_s": per_second,
                        "n": count,
                    }
                )
        baseline = next(
            r["certs_per_s"] for r in rows if r["workload_key"] == "ecdsa-p256" and r["mode"] == "sign"
        )
        for row in rows:
            row["ratio_vs_ecdsa_sign"] = row["certs_per_s"] / baseline
        results += rows

    print(f"{'CA key':<12} {'workload key':<13} {'mode':<12} {'certs/s':>10} {'ratio':>7} {'n':>7}")
    for r in results:
        print(
            f"{r['ca']:<12} {r['workload_key']:<13} {r['mode']:<12} {r['certs_per_s']:>10.1f} "
            f"{r['ratio_vs_ecdsa_sign']:>7.3f} {r['n']:>7}"
        )
    print("ratio = certs/s divided by ECDSA P-256 'sign' under the same CA key")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
