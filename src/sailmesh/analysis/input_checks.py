"""The analyzed files themselves: what could not be read, as messages on the resource.

Owns: turning the loader's tolerant-mode errors (YAML that does not parse, objects or fields
that break the schema or a single-object rule) into findings with `file:line`, as istioctl
analyze reports schema problems (IST0106) and goes on with the rest.
Must not know: the CLI, output; how the files were read (the loader did that).
"""

from __future__ import annotations

from collections.abc import Iterator

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.messages import Finding


def schema_problems(ctx: AnalysisContext) -> Iterator[Finding]:
    """One finding per problem; a resource that still had a valid shape is analyzed as well
    (without the list entries or fields that did not fit)."""
    for p in ctx.input_problems:
        origin = f"{p.source}:{p.line}" if p.line is not None else p.source
        text = f"{p.message}; {p.hint}" if p.hint else p.message
        yield Finding(p.ref or "", p.field, text, origin)
