"""The telemetry collector reads the proxies one at a time and never while the mesh changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sailmesh.telemetry import collector as collector_module
from sailmesh.telemetry.collector import Collector
from sailmesh.telemetry.directory import Directory
from sailmesh.telemetry.store import MetricStore

PROXIES = {f"sidecar~p{i}": Path(f"/run/p{i}/admin.sock") for i in range(6)}


def test_proxies_are_read_one_at_a_time_and_wait_for_a_change_being_applied(
        monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    changes: list[asyncio.Future[None]] = []
    reading = 0
    most = 0

    async def run() -> None:
        quiet = asyncio.Lock()
        collector = Collector(MetricStore(), lambda: PROXIES, Directory, quiet=quiet)

        async def change() -> None:
            async with quiet:
                events.append("change starts")
                await asyncio.sleep(0.05)
                events.append("change ends")

        async def read_admin(path: Path) -> str:
            nonlocal reading, most
            assert not quiet.locked(), f"{path} read while the mesh changes"
            reading += 1
            most = max(most, reading)
            events.append(f"read {path.parent.name}")
            if path.parent.name == "p1":
                changes.append(asyncio.ensure_future(change()))  # arrives mid-collection
            await asyncio.sleep(0.01)
            reading -= 1
            if path.parent.name == "p3":
                raise ConnectionRefusedError("restarting")
            return "envoy_server_uptime 5\n"

        monkeypatch.setattr(collector_module, "read_admin", read_admin)
        await collector.refresh()

    asyncio.run(run())
    assert most == 1
    assert events == ["read p0", "read p1", "change starts", "change ends", "read p2",
                      "read p3", "read p4", "read p5"]


def test_a_proxy_that_cannot_be_read_does_not_stop_the_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []

    async def read_admin(path: Path) -> str:
        read.append(path.parent.name)
        if path.parent.name == "p0":
            raise ConnectionRefusedError("starting")
        return "envoy_server_uptime 5\n"

    monkeypatch.setattr(collector_module, "read_admin", read_admin)
    collector = Collector(MetricStore(), lambda: PROXIES, Directory)
    asyncio.run(collector.refresh())
    assert read == [f"p{i}" for i in range(6)]
