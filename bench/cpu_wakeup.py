"""What waking a process costs on this machine: the round trip of one byte through a pair of
pipes between two processes, pinned to two different CPUs and then both to one CPU.

    python bench/cpu_wakeup.py [--count 2000]

Every hop of a request through a sidecar wakes the process that reads next (the app, an
Envoy worker, nginx), most often on the other CPU, which sleeps between requests: a round
trip here is two such wake-ups. On two CPUs of an ordinary machine a round trip takes a
few microseconds; where waking an idle virtual CPU is expensive (nested virtualization, no
halt polling in the guest) it takes tens, and a sidecar pair's six hand-offs per request
(two without sidecars) pay it on every request. bench/sidecar_mtls.py prints these figures
beside its floor. Between round trips the caller sleeps (`gap_s`), so the other CPU is idle
when it is woken, as between requests at 1,000 req/s.
"""

from __future__ import annotations

import argparse
import os
import time


def round_trips(cpu_a: int, cpu_b: int, count: int = 2000, gap_s: float = 0.0005) -> list[float]:
    """Sorted round-trip times in microseconds, caller pinned to `cpu_a`, echo to `cpu_b`."""
    ping_r, ping_w = os.pipe()
    pong_r, pong_w = os.pipe()
    child = os.fork()
    if child == 0:  # the echo: back at once, until told to stop
        try:
            os.sched_setaffinity(0, {cpu_b})
            while (byte := os.read(ping_r, 1)) != b"q":
                os.write(pong_w, byte)
        finally:
            os._exit(0)
    before = os.sched_getaffinity(0)
    times = []
    try:
        os.sched_setaffinity(0, {cpu_a})
        for _ in range(count):
            time.sleep(gap_s)
            start = time.perf_counter_ns()
            os.write(ping_w, b"x")
            os.read(pong_r, 1)
            times.append((time.perf_counter_ns() - start) / 1000)
    finally:
        os.write(ping_w, b"q")
        os.waitpid(child, 0)
        os.sched_setaffinity(0, before)
        for fd in (ping_r, ping_w, pong_r, pong_w):
            os.close(fd)
    return sorted(times)


def quantile(sorted_times: list[float], q: float) -> float:
    return sorted_times[min(len(sorted_times) - 1, int(len(sorted_times) * q))]


def measure(count: int = 2000) -> dict[str, dict[str, float]]:
    """p50/p99 round trip (µs) across two CPUs and within one; {} on a single-CPU machine."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return {}
    out = {}
    for name, (a, b) in (("two CPUs", (cpus[0], cpus[1])), ("one CPU", (cpus[0], cpus[0]))):
        times = round_trips(a, b, count)
        out[name] = {"p50": quantile(times, 0.5), "p99": quantile(times, 0.99)}
    return out


def describe(figures: dict[str, dict[str, float]]) -> str:
    if not figures:
        return "one CPU only: no wake-up across CPUs to measure"
    two, one = figures["two CPUs"], figures["one CPU"]
    return (f"a round trip between two processes (two wake-ups): on two CPUs p50 {two['p50']:.1f} / "
            f"p99 {two['p99']:.1f} µs, on one CPU p50 {one['p50']:.1f} / p99 {one['p99']:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="round trips per placement")
    print(describe(measure(parser.parse_args().count)))


if __name__ == "__main__":
    main()
