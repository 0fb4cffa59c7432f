"""Istio's analyzer test cases, case for case: our inputs in the shape of Istio's testdata,
the same expected (code, resource) messages (see `istio_cases`)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from sailmesh.analysis.catalogue import analyze
from sailmesh.analysis.context import build_context, layer, with_builtin_gateways
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.loader import load_paths
from tests.analysis.istio_cases import CASES, DIFFERS, SCOPE, IstioCase

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def messages(case: IstioCase) -> Counter[tuple[str, str]]:
    """As `sailctl analyze -A -f FILES` over an empty store, limited to the case's scope."""
    loaded = load_paths(case.paths, None, skip_unknown_kinds=True, tolerant=True)
    snapshot = Snapshot.of(with_builtin_gateways(layer([], loaded.resources, NOW)))
    pods = [s.data for s in loaded.skipped if s.kind == "Pod"]
    ctx = build_context(snapshot, NOW, pods, loaded.errors)
    return Counter((m.istio_code or m.code, m.ref) for m in analyze(ctx)
                   if m.code in SCOPE[case.analyzer])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_istio_case(case: IstioCase) -> None:
    expected = DIFFERS[case.name][0] if case.name in DIFFERS else case.expected
    assert messages(case) == Counter(expected)


def test_every_difference_says_why() -> None:
    assert set(DIFFERS) <= {c.name for c in CASES}
    assert all(why for _, why in DIFFERS.values())
