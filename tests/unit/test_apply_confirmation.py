"""`sailctl apply` with a running mesh: it exits non-zero when a proxy did not confirm the
new configuration (NACK or timeout), naming the proxy and Envoy's reason — as scripts and
CI expect of a command whose change does not take effect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sailmesh.cli import submit
from sailmesh.cli.main import cli

VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web]
  http: [{route: [{destination: {host: web}}]}]
"""


@pytest.mark.parametrize(("proxies", "code", "said"), [
    ({"sidecar~web-0.default": True}, 0, ""),
    ({"sidecar~web-0.default": "LDS rejected by Envoy: invalid listener"}, 1,
     "error: proxy sidecar~web-0.default has not applied the new configuration: "
     "LDS rejected by Envoy: invalid listener"),
    ({"router~gw-0.istio-system": "not confirmed within 5s (CDS sent, not yet confirmed)"}, 1,
     "error: proxy router~gw-0.istio-system has not applied the new configuration: "
     "not confirmed within 5s (CDS sent, not yet confirmed)"),
])
def test_apply_exits_non_zero_when_a_proxy_did_not_confirm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proxies: dict[str, Any], code: int,
        said: str) -> None:
    monkeypatch.setenv("SAILMESH_HOME", str(tmp_path))
    replies = {"sync": {"version": "v1", "diagnostics": [], "proxies": proxies}}
    monkeypatch.setattr(submit, "daemon_call", lambda op, *a, **k: replies.get(op))
    result = CliRunner().invoke(cli, ["apply", "-f", "-"], input=VS)
    assert result.exit_code == code, result.output
    assert "virtualservice.networking.istio.io/web created" in result.stdout
    assert said in result.stderr
