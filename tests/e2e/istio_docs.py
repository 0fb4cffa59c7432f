"""istio.io's documentation tests, the parts our end-to-end tests share: a snippet runs as
istio.io's test scripts run it (bash, with the drop-in names kubectl/istioctl of `sailctl env
--aliases`, from a directory holding Istio's `samples/`), and its output is compared the
way tests/util/verify.sh compares it (`_verify_same`, `_verify_contains`/`_verify_lines`,
`_verify_elided`, `_verify_failure`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.e2e.mesh import REPO, Mesh

SAMPLES = REPO / "tests" / "e2e" / "data" / "istio" / "samples"
ALIASES = 'eval "$(sailctl env --aliases)"; '


@contextmanager
def task_mesh(instance: str) -> Iterator[Mesh]:
    """A mesh whose working directory holds Istio's `samples/`, as the pages expect."""
    m = Mesh.start(instance)
    try:
        os.symlink(SAMPLES, m.work / "samples")
        yield m
    finally:
        m.stop()


def run(mesh: Mesh, script: str, timeout: float = 120) -> str:
    """A snippet as istio.io's tests run it: bash, stdout and stderr together."""
    proc = mesh.sh(ALIASES + "{ " + script + "\n} 2>&1", check=False, timeout=timeout)
    return proc.stdout


def rolled_out(mesh: Mesh, namespace: str, *deployments: str) -> None:
    """istio.io's `_wait_for_deployment`: each Deployment rolls out within 90 s."""
    for dep in deployments:
        out = run(mesh, f"kubectl -n {namespace} rollout status deployment {dep} --timeout=90s")
        assert out.endswith(f'deployment "{dep}" successfully rolled out\n'), out


def verify_same(mesh: Mesh, script: str, expected: str, timeout: float = 40) -> None:
    """istio.io's `_verify_same`: the output must become exactly `expected` (config takes a
    moment to reach every proxy, so it is tried again until the deadline)."""
    deadline = time.monotonic() + timeout
    got = ""
    while time.monotonic() < deadline:
        # Lines compared without trailing blanks and CR (curl -I ends its status line
        # `HTTP/2 200 ` with CRLF).
        got = "\n".join(line.rstrip() for line in run(mesh, script).strip().split("\n"))
        if got == expected.strip():
            return
        time.sleep(1)
    assert got == expected.strip(), f"expected:\n{expected}\n--- got:\n{got}"


def verify_lines(mesh: Mesh, script: str, *wanted: str, timeout: float = 30) -> str:
    """istio.io's `_verify_lines` with `+ line`: every wanted text appears in the output."""
    deadline = time.monotonic() + timeout
    got = ""
    while time.monotonic() < deadline:
        got = run(mesh, script)
        if all(w in got for w in wanted):
            return got
        time.sleep(1)
    raise AssertionError(f"missing {wanted!r} in:\n{got}")


def verify_failure(mesh: Mesh, script: str, timeout: float = 30) -> None:
    """istio.io's `_verify_failure`: the snippet must fail (non-zero exit)."""
    deadline = time.monotonic() + timeout
    while True:
        proc = mesh.sh(ALIASES + script, check=False, timeout=60)
        if proc.returncode != 0:
            return
        assert time.monotonic() < deadline, f"did not fail:\n{proc.stdout}"
        time.sleep(1)


def elided_pattern(expected: str) -> re.Pattern[str]:
    """istio.io's `_verify_elided`: the expected text with `...` lines standing for any
    number of lines (a `...` inside a line: any text)."""
    parts = []
    for line in expected.strip("\n").split("\n"):
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*".join(re.escape(p) for p in line.split("...")) + r"\n")
    return re.compile("".join(parts))


def verify_elided(mesh: Mesh, script: str, expected: str, timeout: float = 40) -> str:
    """The output must match `expected` as a whole, `...` lines eliding; tried again until
    the deadline. Line ends are compared without trailing blanks and CR (curl -D prints
    headers with CRLF, and its status line as `HTTP/2 200 `)."""
    pattern = elided_pattern(expected)
    deadline = time.monotonic() + timeout
    got = ""
    while time.monotonic() < deadline:
        got = "\n".join(line.rstrip() for line in run(mesh, script).split("\n"))
        if pattern.fullmatch(got.rstrip("\n") + "\n"):
            return got
        time.sleep(1)
    raise AssertionError(f"output does not match\n{expected}\n--- got:\n{got}")
