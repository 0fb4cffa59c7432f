"""Hostile manifests through the loader: each is refused with file:line, or accepted and
harmless; nothing raises anything but ResourceError, and nothing takes long."""

from __future__ import annotations

import time

import pytest
from tests.hostile_manifests import hostile_cases

from sailmesh.resources.errors import ResourceError
from sailmesh.resources.loader import load_text

CASES = hostile_cases()


def test_enough_cases() -> None:
    assert len(CASES) >= 250


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hostile_manifest(name: str, text: str, expected: str) -> None:
    source = f"{name}.yaml"
    started = time.monotonic()
    try:
        load_text(text, source)
    except ResourceError as exc:
        assert expected == "reject", f"{name} refused: {exc}"
        assert exc.errors
        for problem in exc.errors:
            # file:line on every error (JSON input has no lines, and a request over the size
            # limit is refused before reading any; the file is named).
            assert problem.source == source
            whole = text.lstrip().startswith("{") or "Request entity too large" in str(problem)
            assert problem.line is not None or whole, str(problem)
            assert "Traceback" not in str(problem)
    else:
        assert expected == "accept", f"{name} was accepted"
    assert time.monotonic() - started < 2.0, f"{name} took too long"
