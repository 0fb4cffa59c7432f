"""Sending a write command to the running daemon, or running it here when none runs.

A write command (`apply -f`, `delete KIND NAME`, `create namespace`, `label`, ...) is one
request, `store.commands.run`'s `op` and its arguments: meshd runs it when the mesh runs,
as kubectl's API server would; without a daemon the same code runs on the store here, so
the output and exit code are the same either way. Sending imports click, json and a
socket only; the models and the store are imported when the request runs here.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sailmesh.cli.common import daemon_call, home, print_report
from sailmesh.meshd import control

# Storing a large input and starting its pods before the sync answers takes longer than the
# control socket's usual 30 s at a thousand objects; a daemon that does not answer at all
# still ends the command.
APPLY_TIMEOUT_S = 120.0


def submit(op: str, **request: Any) -> None:
    """The write command `op`: through the daemon when one runs, else here (and a client
    dry run always here, as kubectl's asks no server); print its report, exit with its
    code. An input too large to send in one request is run here."""
    reply = None
    if request.get("dry_run") != "client":
        with contextlib.suppress(control.RequestTooLarge):
            reply = daemon_call(op, timeout=APPLY_TIMEOUT_S, **request)
    if reply is None:
        reply = _run_here(op, request)
    print_report(reply["lines"], reply["code"])


def _run_here(op: str, request: dict[str, Any]) -> dict[str, Any]:
    """The daemon's flow on the store here; a write is followed by a sync, as in meshd."""
    from sailmesh.store import Store, applying, commands

    report = commands.run(Store(home().root), op, request)
    if report.written:
        applying.confirm(report, daemon_call("sync"))
    return report.as_json()
