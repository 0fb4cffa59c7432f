"""How sailctl prints: kubectl-style plain tables, `-o yaml|json|name`, errors on stderr.

Tables are plain text (columns separated by three spaces, like kubectl) so they can be
piped to awk; colour is only used for messages on a terminal.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import click


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, headers)), *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        line = "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
        lines.append(line.rstrip())
    return "\n".join(lines)


def emit(data: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2))
    elif output == "yaml":
        import yaml  # only when printed: `fail` is used by commands that must start light

        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
    else:
        raise click.UsageError(f'unable to match a printer suitable for the output format "{output}"')


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def age(since: float, now: float | None = None) -> str:
    """kubectl's AGE column: 42s, 5m, 3h, 2d."""
    if not since:
        return "<unknown>"
    s = int((now or time.time()) - since)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size * (2 if unit != "m" else 1):
            return f"{s // size}{unit}"
    return f"{max(s, 0)}s"
