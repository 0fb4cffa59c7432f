"""The daemon's pushes on pod changes (MeshDaemon._on_pod_change → _repush): changes that
arrive while a push runs make one more push, whatever their number (100 pods becoming
ready one by one while each push of 100 proxies takes a second)."""

import asyncio
import threading
from pathlib import Path

from sailmesh.meshd.daemon import MeshDaemon
from sailmesh.meshd.paths import Home


def test_pod_changes_during_a_push_make_one_more_push(tmp_path: Path) -> None:
    daemon = MeshDaemon(Home(tmp_path / "mesh", "rp"))
    pushes = 0

    async def main() -> None:
        daemon._loop = asyncio.get_running_loop()
        reported = asyncio.Event()

        async def push(_vips: dict) -> dict:
            nonlocal pushes
            pushes += 1
            await reported.wait()  # the first push runs until every change is reported
            return {}

        daemon._push = push  # type: ignore[method-assign]
        daemon._on_pod_change()
        while pushes == 0:
            await asyncio.sleep(0.01)
        # The supervisor thread reports a pod change every 30 ms meanwhile.
        reporter = threading.Thread(target=lambda: [
            (daemon._on_pod_change(), threading.Event().wait(0.03)) for _ in range(10)])
        reporter.start()
        await asyncio.to_thread(reporter.join)
        reported.set()
        await asyncio.sleep(0.3)  # what was queued has run
        async with daemon._sync_lock:
            pass

    asyncio.run(main())
    assert pushes == 2
