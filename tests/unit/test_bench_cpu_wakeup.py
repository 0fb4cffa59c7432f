"""bench/cpu_wakeup.py: the round trips it times really go through the echo process, and
what it prints."""

from __future__ import annotations

import os

import pytest
from bench import cpu_wakeup


def test_round_trips_are_timed_one_per_request_and_sorted():
    cpu = sorted(os.sched_getaffinity(0))[0]
    before = os.sched_getaffinity(0)
    times = cpu_wakeup.round_trips(cpu, cpu, count=50, gap_s=0)
    assert len(times) == 50 and times == sorted(times) and times[0] > 0
    assert os.sched_getaffinity(0) == before  # the caller's placement is given back


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_both_placements_are_measured_and_described():
    figures = cpu_wakeup.measure(count=50)
    assert set(figures) == {"two CPUs", "one CPU"}
    assert all(0 < f["p50"] <= f["p99"] for f in figures.values())
    text = cpu_wakeup.describe(figures)
    assert text.startswith("a round trip between two processes (two wake-ups): on two CPUs p50 ")


def test_a_single_cpu_machine_is_said_so():
    assert cpu_wakeup.describe({}).startswith("one CPU only")
