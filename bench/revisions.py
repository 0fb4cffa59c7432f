"""Compare a benchmark between an earlier commit (A, the base) and the checkout it runs from
(B), in one run: `--base COMMIT`.

The base is checked out into a temporary git worktree (removed afterwards) and run with the
same interpreter, virtualenv and benchmark file, only with `PYTHONPATH=<worktree>/src`, so
the mesh daemon, its pods and the CLI are the base's code and everything measuring them is
the same. Each round is one child run of the benchmark (`--json`: one mesh, its own
measurement, one JSON line); the rounds alternate A B B A A B ... so that drift on a shared
machine falls on both sides. A ratio B/A is taken within each pair of rounds (A1 with B1,
...) and reported as its minimum and median over the pairs.

Memory of a pod: the resident set (RSS) and the proportional set (PSS: pages shared with
other processes — the Python interpreter, Envoy's binary — counted by their share) summed
over every process in the pod's network namespace.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def base_checkout(commit: str) -> Iterator[Path]:
    """A detached worktree of `commit`, removed on exit."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{commit}^{{commit}}"],
                         capture_output=True, text=True, check=True).stdout.strip()
    tree = Path(tempfile.mkdtemp(prefix=f"smbench-base-{sha[:8]}-", dir="/tmp"))
    tree.rmdir()
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), sha],
                   capture_output=True, check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                       capture_output=True)


def order(rounds: int) -> list[str]:
    """A B B A A B B A ..., `rounds` of each."""
    pattern = ["A", "B", "B", "A"]
    return [pattern[i % 4] for i in range(2 * rounds)]


def run_rounds(script: str, argv: Sequence[str], base: str, rounds: int) -> dict[str, list[dict]]:
    """Child runs of `script` (with `argv` and `--json`) alternating between the base commit
    (A) and this checkout (B); the JSON each printed last, by side."""
    results: dict[str, list[dict]] = {"A": [], "B": []}
    with base_checkout(base) as tree:
        for i, side in enumerate(order(rounds)):
            env = dict(os.environ)
            if side == "A":
                env["PYTHONPATH"] = os.pathsep.join(
                    [str(tree / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
            label = f"A (base {base})" if side == "A" else "B (this checkout)"
            print(f"round {i + 1}/{2 * rounds}: {label} ...", file=sys.stderr, flush=True)
            proc = subprocess.run([sys.executable, script, *argv, "--json"], env=env,
                                  stdout=subprocess.PIPE, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                sys.exit(f"round {i + 1} ({label}) failed with exit status {proc.returncode}")
            results[side].append(json.loads(lines[-1]))
    return results


def compare(results: dict[str, list[dict]], rows: Sequence[tuple[str, str, str]]) -> None:
    """One line per (key, label, format) row: A median, B median, B/A ratio min / median over
    the pairs of rounds. Keys are dotted paths into each round's JSON."""
    def get(r: dict, key: str) -> float:
        for part in key.split("."):
            r = r[part]
        return float(r)  # type: ignore[arg-type]

    print(f"{'':<44} {'A median':>10} {'B median':>10} {'B/A min':>8} {'B/A med':>8}")
    for key, label, fmt in rows:
        a = [get(r, key) for r in results["A"]]
        b = [get(r, key) for r in results["B"]]
        ratios = [y / x for x, y in zip(a, b, strict=True) if x]
        ratio = (f"{min(ratios):>8.2f} {statistics.median(ratios):>8.2f}" if ratios
                 else f"{'-':>8} {'-':>8}")
        print(f"{label:<44} {statistics.median(a):>10{fmt}} {statistics.median(b):>10{fmt}} {ratio}")


def memory_mb(pids: Sequence[int]) -> dict[str, float]:
    """RSS and PSS summed over `pids`, in MB, and how many processes were counted."""
    rss = pss = 0
    counted = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line and "-" not in line)
        except OSError:
            continue  # exited meanwhile
        rss += int(fields["Rss"].split()[0])
        pss += int(fields["Pss"].split()[0])
        counted += 1
    return {"rss": rss / 1024, "pss": pss / 1024, "processes": counted}


def pod_memory(netns: str) -> dict[str, float]:
    """Memory of every process in the network namespace /run/netns/<netns>."""
    from sailmesh.runtime.network import pids_in_netns  # the side's own code

    return memory_mb(pids_in_netns(netns))
