"""The bootstrap is valid for the installed Envoy and keeps admin off TCP."""

import json
import subprocess
from pathlib import Path

from sailmesh.xds import envoy_argv, envoy_bootstrap


def _bootstrap(tmp_path: Path, **overrides: object) -> dict:
    arguments: dict = dict(
        node_id="sidecar~10.0.0.2~web-1.test~test.svc.cluster.local",
        cluster="web.test",
        xds_socket=tmp_path / "xds.sock",
        admin_socket=tmp_path / "admin.sock",
        metadata={"NAMESPACE": "test"},
    )
    arguments.update(overrides)
    return envoy_bootstrap(**arguments)


def test_envoy_accepts_the_bootstrap(tmp_path: Path) -> None:
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(_bootstrap(tmp_path)))
    argv = envoy_argv(path)
    done = subprocess.run(
        [*argv, "--mode", "validate"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout + done.stderr


def test_admin_and_control_plane_use_unix_sockets_only(tmp_path: Path) -> None:
    bootstrap = _bootstrap(tmp_path)
    assert bootstrap["admin"]["address"] == {"pipe": {"path": str(tmp_path / "admin.sock"), "mode": 0o600}}
    assert bootstrap["node"]["metadata"] == {"NAMESPACE": "test"}
    ads = bootstrap["dynamic_resources"]["ads_config"]
    assert ads["set_node_on_first_message_only"] is True
    assert ads["api_type"] == "DELTA_GRPC"  # incremental: a change sends only what changed
    (xds, stats) = bootstrap["static_resources"]["clusters"]
    endpoint = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"] == {"pipe": {"path": str(tmp_path / "xds.sock")}}
    assert stats["name"] == "prometheus_stats"
    ports = [
        listener["address"]["socket_address"]["port_value"]
        for listener in bootstrap["static_resources"]["listeners"]
    ]
    assert ports == [15021, 15090]


def test_ready_and_stats_listeners_are_optional(tmp_path: Path) -> None:
    bootstrap = _bootstrap(tmp_path, ready_port=None, stats_port=None)
    assert bootstrap["static_resources"]["listeners"] == []
    assert [c["name"] for c in bootstrap["static_resources"]["clusters"]] == ["xds-grpc"]


def test_argv_disables_hot_restart_unless_a_base_id_is_given(tmp_path: Path) -> None:
    argv = envoy_argv(tmp_path / "c.json", concurrency=1, log_level="info")
    assert "--disable-hot-restart" in argv
    assert argv[argv.index("--concurrency") + 1] == "1"
    with_base = envoy_argv(tmp_path / "c.json", base_id=7)
    assert "--disable-hot-restart" not in with_base
    assert with_base[with_base.index("--base-id") + 1] == "7"
