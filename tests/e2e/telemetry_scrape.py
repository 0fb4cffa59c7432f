"""Reading the control plane's `/metrics` in tests: Prometheus text parsed by
prometheus_client's own parser, and waiting for counts to settle (proxies flush their
access-log entries every half second)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Mapping

from prometheus_client.parser import text_string_to_metric_families

METRICS_URL = "http://127.0.0.1:15014/metrics"


def scrape(url: str = METRICS_URL) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return [(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def total(samples: list[tuple[str, dict[str, str], float]], name: str,
          **match: str) -> float:
    return sum(v for n, labels, v in samples if n == name
               and all(labels.get(k) == want for k, want in match.items()))


def settle(read: Callable[[], float], want: float, timeout: float = 15) -> float:
    """Poll until `read()` reaches `want`, then once more after a flush interval so that an
    overshoot shows; returns the last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while value < want and time.monotonic() < deadline:
        time.sleep(0.25)
        value = read()
    time.sleep(1.2)
    return read()


def matching(samples: list[tuple[str, dict[str, str], float]], name: str,
             match: Mapping[str, str]) -> list[dict[str, str]]:
    return [labels for n, labels, _ in samples if n == name
            and all(labels.get(k) == v for k, v in match.items())]
