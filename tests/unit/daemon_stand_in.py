"""meshd's control socket with its real write operations (`ControlOps._op_write`) served by
an event loop in a thread, for tests that compare a command through the daemon with the
same command where no mesh runs. Only the sync after storing is a stand-in that returns
the proxies' answers a test chooses."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sailmesh.cli.main import cli
from sailmesh.meshd import control
from sailmesh.meshd.ops import ControlOps
from sailmesh.meshd.paths import Home
from sailmesh.store import Store

CONFIRMED = {"version": "v1", "diagnostics": [], "proxies": {"sidecar~web-0.default": True}}


class FakeMeshd(ControlOps):
    """The parts of MeshDaemon that the write operations use: its store, its sync lock, and
    a sync; it notes every write request it served."""

    def __init__(self, home: Home) -> None:
        self.store = Store(home.root)
        self._sync_lock = asyncio.Lock()
        self.sync_reply: dict[str, Any] = CONFIRMED
        self.syncs = 0
        self.writes: list[str] = []  # the write requests served, by op

    async def _op_write(self, req: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(req["op"])
        return await super()._op_write(req)

    async def sync_locked(self) -> dict[str, Any]:
        assert self._sync_lock.locked(), "the sync after a write runs under the sync lock"
        self.syncs += 1
        return self.sync_reply

    async def sync(self) -> dict[str, Any]:
        """The sync other commands ask for after writing the store themselves."""
        async with self._sync_lock:
            return await self.sync_locked()


@pytest.fixture
def meshd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMeshd]:
    home = Home.from_env(str(tmp_path / "up"))
    home.run.mkdir(parents=True)
    daemon = FakeMeshd(home)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    servers: list[asyncio.AbstractServer] = []

    async def start() -> None:
        servers.append(await control.serve(home.control_socket,
                                            {"sync": daemon._op_sync, **daemon.write_ops()}))
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    monkeypatch.setenv("SAILMESH_HOME", str(home.root))
    yield daemon
    loop.call_soon_threadsafe(servers[0].close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def sailctl(home: Path, *args: str, stdin: str | None = None) -> Result:
    os.environ["SAILMESH_HOME"] = str(home)
    return CliRunner().invoke(cli, list(args), input=stdin)


def both(meshd: FakeMeshd, tmp_path: Path, *args: str, stdin: str | None = None
         ) -> tuple[Result, Result]:
    """The command through the daemon, then in a home where no mesh runs."""
    up = sailctl(meshd.store.root, *args, stdin=stdin)
    down = sailctl(tmp_path / "down", *args, stdin=stdin)
    return up, down


def same(up: Result, down: Result) -> None:
    assert (up.stdout, up.stderr, up.exit_code) == (down.stdout, down.stderr, down.exit_code)
