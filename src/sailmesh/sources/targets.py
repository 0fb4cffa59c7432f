"""The objects a command names on its command line, in kubectl's grammar: `KIND/NAME...`
(a kind with each name) or `KIND[,KIND] NAME...` (every kind with every name).

Standard library only, like the rest of `sources`: the light CLI commands read it before
sending a request, and `store.commands` resolves the kinds it returns. Kind words are
returned as typed (`vs`, `pods`, `virtualservices.networking.istio.io`).
"""

from __future__ import annotations

from collections.abc import Sequence


def named_targets(args: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(kind word, names) pairs; [] for no arguments."""
    if not args:
        return []
    if "/" in args[0]:
        return [(kind, [name]) for kind, _, name in (a.partition("/") for a in args)]
    return [(kind, list(args[1:])) for kind in args[0].split(",")]
