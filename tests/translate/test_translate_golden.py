"""Golden translation cases, each also checked by the real `envoy --mode validate`.

`REFRESH_GOLDEN=1 pytest tests/translate` rewrites the goldens; review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cases_io import CASES, ENVOY, check_golden, envoy_validate, load_case, render, static_bootstrap

CASE_DIRS = sorted(p for p in CASES.iterdir() if (p / "input.yaml").exists())


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_golden(case_dir: Path) -> None:
    case = load_case(case_dir)
    check_golden(case_dir, render(case.translate()))


@pytest.mark.skipif(not ENVOY.exists(), reason="envoy binary not installed in .venv")
@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_envoy_accepts(case_dir: Path, tmp_path: Path) -> None:
    case = load_case(case_dir)
    config = case.translate()
    assert config.listeners, "a case must produce listeners for Envoy to check"
    result = envoy_validate(static_bootstrap(config, case.proxy, case.files), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
