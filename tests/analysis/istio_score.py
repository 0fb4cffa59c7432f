"""Precision and recall of `sailctl analyze` on Istio's analyzer test cases.

    .venv/bin/python -m tests.analysis.istio_score [--sailctl "COMMAND"]

Runs `sailctl analyze -A -o json -f FILES` once per case of `istio_cases.CASES` (a fresh
SAILMESH_HOME each time, so only the case's files are analyzed), keeps the messages of our
analyzers that do the job of the case's Istio analyzer, and compares their (Istio code,
resource) pairs, repeats counted, with what Istio's test expects. An input that `analyze`
refuses counts as no messages. `--sailctl` runs another build (e.g. an older checkout:
`--sailctl "env PYTHONPATH=/tmp/old/src .venv/bin/python -m sailmesh.cli.main"`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.analysis.istio_cases import CASES, SCOPE, IstioCase, compare


def run_case(sailctl: list[str], case: IstioCase) -> tuple[tuple[str, str], ...]:
    with tempfile.TemporaryDirectory() as home:
        args = [*sailctl, "analyze", "-A", "-o", "json"]
        for p in case.paths:
            args += ["-f", p]
        out = subprocess.run(args, capture_output=True, text=True,
                             env={**os.environ, "SAILMESH_HOME": home})
    try:
        messages = json.loads(out.stdout or "[]")
    except json.JSONDecodeError:
        return ()
    return tuple((m["istioCode"] or m["code"], m["resource"]) for m in messages
                 if m.get("sailmeshCode", m["code"]) in SCOPE[case.analyzer])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sailctl", default=str(Path(sys.executable).with_name("sailctl")))
    parser.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    args = parser.parse_args()
    sailctl = shlex.split(args.sailctl)
    tp = fp = fn = exact = 0
    for case in CASES:
        got = run_case(sailctl, case)
        t, f, n = compare(case.expected, got)
        tp, fp, fn, exact = tp + t, fp + f, fn + n, exact + (f == n == 0)
        if args.verbose and (f or n):
            print(f"{case.name}: expected {sorted(case.expected)}, got {sorted(got)}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(f"cases {len(CASES)}, exactly as Istio {exact}; messages: expected {tp + fn}, "
          f"reported {tp + fp}, right {tp}; precision {precision:.2f}, recall {recall:.2f}")


if __name__ == "__main__":
    main()
