"""Image → local command mapping, plan hashing and kube-proxy rendering (no root needed)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from sailmesh.resources.core import Container
from sailmesh.runtime.errors import ContainerConfigError, ImageError
from sailmesh.runtime.images import resolve_container, split_image
from sailmesh.runtime.kubeproxy import KubeProxy, render_jumps, render_rules
from sailmesh.runtime.plans import ContainerPlan, PodPlan, ServiceRule, VolumePlan

VENV_BIN = os.path.dirname(sys.executable)


def container(**fields: object) -> Container:
    return Container.model_validate({"name": "app", **fields})


def test_seed_httpbin_command_uses_the_venv_gunicorn() -> None:
    plan = resolve_container(
        container(
            image="docker.io/kong/httpbin",
            command=["gunicorn", "-b", "0.0.0.0:8080", "httpbin:app", "-k", "gevent"],
            env=[{"name": "WORKON_HOME", "value": "/tmp"}],
        ),
        "httpbin-abc",
        "test",
    )
    assert plan.argv == (os.path.join(VENV_BIN, "gunicorn"), "-b", "0.0.0.0:8080", "httpbin:app", "-k", "gevent")
    assert plan.env["WORKON_HOME"] == "/tmp"
    assert plan.env["HOSTNAME"] == "httpbin-abc"


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("docker.io/istio/examples-helloworld-v1", "v1"),
        ("istio/examples-helloworld-v2:1.0", "v2"),
        # Every name Istio has published it under (samples/helloworld/helloworld.yaml today).
        ("registry.istio.io/release/examples-helloworld-v1:1.0", "v1"),
        ("registry.istio.io/release/examples-helloworld-v2:1.0", "v2"),
        ("gcr.io/istio-release/examples-helloworld-v2:1.0", "v2"),
    ],
)
def test_helloworld_images(image: str, version: str) -> None:
    plan = resolve_container(container(image=image), "hw", "test")
    assert plan.argv == (sys.executable, "-P", "-m", "sailmesh.apps.helloworld")
    assert plan.env["SERVICE_VERSION"] == version


@pytest.mark.parametrize("image", ["nginx", "nginx:1.25", "docker.io/library/nginx:stable"])
def test_nginx_images_bring_the_official_layout(image: str) -> None:
    plan = resolve_container(container(image=image), "web", "test")
    assert os.path.basename(plan.argv[0]) == "nginx"
    assert "daemon off;" in plan.argv
    paths = {v.mount_path: v for v in plan.image_volumes}
    assert b"include /etc/nginx/conf.d/*.conf;" in paths["/etc/nginx"].files["nginx.conf"]
    assert b"sites-enabled" not in paths["/etc/nginx"].files["nginx.conf"]
    assert b"Welcome to nginx!" in paths["/usr/share/nginx/html"].files["index.html"]


@pytest.mark.parametrize("image", ["curlimages/curl", "curlimages/curl:8.1.0", "busybox:1.36", "my/sleep"])
def test_client_images_sleep(image: str) -> None:
    plan = resolve_container(container(image=image), "c", "test")
    assert plan.argv[1:] == ("infinity",) and os.path.basename(plan.argv[0]) == "sleep"


def test_unknown_image_without_command_names_image_and_known_ones() -> None:
    with pytest.raises(ImageError, match=r"'example.com/app:1' has no local equivalent"
                                         r".*command.*helloworld.*nginx.*docs/images.md") as exc:
        resolve_container(container(image="example.com/app:1"), "p", "test")
    assert (exc.value.container, exc.value.image, exc.value.reason) == (
        "app", "example.com/app:1", "ImagePullBackOff")


def test_missing_command_is_an_image_error() -> None:
    with pytest.raises(ImageError, match="not-a-real-binary"):
        resolve_container(container(image="x", command=["not-a-real-binary"]), "p", "test")


def test_value_from_is_refused_clearly() -> None:
    with pytest.raises(ContainerConfigError, match="FOO uses valueFrom"):
        resolve_container(
            container(image="busybox", env=[{"name": "FOO", "valueFrom": {"fieldRef": {}}}]), "p", "t"
        )


def test_split_image_keeps_registry_ports() -> None:
    assert split_image("localhost:5000/nginx") == ("localhost:5000/nginx", "localhost:5000/nginx")
    assert split_image("nginx:1.2@sha256:ab") == ("nginx", "nginx:1.2")


def test_spec_hash_ignores_hosts_and_follows_containers_and_volumes() -> None:
    c = ContainerPlan("a", ("/bin/true",), {})
    base = PodPlan("ns", "p", {}, (c,))
    assert base.spec_hash() == PodPlan("ns", "p", {"x": "y"}, (c,), hosts=(("1.2.3.4", ("h",)),)).spec_hash()
    changed_env = PodPlan("ns", "p", {}, (ContainerPlan("a", ("/bin/true",), {"K": "V"}),))
    changed_vol = PodPlan("ns", "p", {}, (c,), volumes=(VolumePlan("/x", {"f": b"1"}),))
    assert len({base.spec_hash(), changed_env.spec_hash(), changed_vol.spec_hash()}) == 3


def test_kube_proxy_balances_like_kube_proxy() -> None:
    text = render_rules([ServiceRule("10.96.0.10", 80, "TCP", (("10.244.0.2", 8080), ("10.244.0.3", 8080)))])
    dnat = [line for line in text.splitlines() if "DNAT" in line and "MASQUERADE" not in line]
    assert "--probability 0.5000000000" in dnat[0] and "statistic" not in dnat[1]
    assert "--to-destination 10.244.0.3:8080" in dnat[1]
    assert text.count("MASQUERADE") == 2


def test_kube_proxy_restores_only_rules_that_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = KubeProxy("node")
    restored: list[str] = []
    monkeypatch.setattr(proxy, "_restore", restored.append)
    one = [ServiceRule("10.96.0.10", 80, "TCP", (("10.244.0.2", 8080),))]
    two = [ServiceRule("10.96.0.10", 80, "TCP", (("10.244.0.2", 8080), ("10.244.0.3", 8080)))]
    for rules in (one, one, two, two, one):
        proxy.apply(rules)
    assert restored == [render_rules(one), render_rules(two), render_rules(one)]
    proxy.install()  # the chains are made anew: the same rules are restored again
    proxy.apply(one)
    assert restored[-2:] == [render_jumps(), render_rules(one)]

    def failing(text: str) -> None:
        raise RuntimeError("iptables-restore: exit 1")

    monkeypatch.setattr(proxy, "_restore", failing)
    with pytest.raises(RuntimeError):
        proxy.apply(two)
    monkeypatch.setattr(proxy, "_restore", restored.append)
    proxy.apply(one)  # after a failed restore the chains are unknown: restored again
    assert restored[-1] == render_rules(one)


@pytest.mark.parametrize(("image", "port", "app"), [
    # Istio's samples/httpbin today: go-httpbin's JSON shape.
    ("docker.io/mccutchen/go-httpbin:v2.15.0", 8080, "sailmesh.apps.go_httpbin:app"),
    ("mccutchen/go-httpbin", 8080, "sailmesh.apps.go_httpbin:app"),
    ("docker.io/kennethreitz/httpbin", 80, "httpbin:app"),  # Istio's samples/httpbin before
])
def test_httpbin_images_run_httpbin_on_the_images_port(image: str, port: int, app: str) -> None:
    plan = resolve_container(Container(name="httpbin", image=image), "p", "ns")
    assert plan.argv[0].endswith("/gunicorn")
    assert plan.argv[1:] == ("-b", f"0.0.0.0:{port}", app, "-k", "gevent")



@pytest.mark.parametrize(("args", "expected"), [
    (None, ("9000", "hello")),  # the image's CMD
    (["9000", "hello"], ("9000", "hello")),  # samples/tcp-echo/tcp-echo.yaml
    (["9000,9001,9002", "one"], ("9000,9001,9002", "one")),  # tcp-echo-services.yaml
])
def test_tcp_echo_args_go_to_the_images_entrypoint(args: list[str] | None,
                                                   expected: tuple[str, ...]) -> None:
    fields: dict[str, object] = {"image": "docker.io/istio/tcp-echo-server:1.2"}
    if args is not None:
        fields["args"] = args
    plan = resolve_container(container(**fields), "p", "ns")
    assert plan.argv == (sys.executable, "-P", "-m", "sailmesh.apps.tcp_echo", *expected)
    # `command` replaces the entrypoint, as on Kubernetes.
    plan = resolve_container(container(**{**fields, "command": ["sleep"], "args": ["1"]}), "p", "ns")
    assert plan.argv[1:] == ("1",) and plan.argv[0].endswith("sleep")


def test_a_command_is_found_again_after_it_is_installed_changed_or_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sync resolves every container; a command found once is remembered, yet a
    Deployment waiting for a command starts once it is installed, and one whose command
    is gone or no longer executable is reported (RunContainerError) at the next sync."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.setenv("PATH", f"{first}:{second}")
    app = container(image="example/app", command=["sm-test-app", "--serve"])

    def argv0() -> str | None:
        try:
            return resolve_container(app, "app-1", "test").argv[0]
        except ImageError as exc:
            assert exc.reason == "RunContainerError"
            return None

    assert argv0() is None
    tool = second / "sm-test-app"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert argv0() == str(tool)  # installed
    lookups = []
    monkeypatch.setattr(shutil, "which", lambda *a, **kw: lookups.append(a) or None)
    assert argv0() == str(tool)  # remembered: PATH is not searched again
    assert lookups == []
    monkeypatch.undo()
    monkeypatch.setenv("PATH", f"{first}:{second}")
    tool.chmod(0o644)
    assert argv0() is None  # no longer executable
    tool.chmod(0o755)
    assert argv0() == str(tool)
    tool.unlink()
    (second / "sm-test-app").mkdir()  # a directory of that name is no command
    assert argv0() is None
    (first / "sm-test-app").write_text("#!/bin/sh\n")
    (first / "sm-test-app").chmod(0o755)
    assert argv0() == str(first / "sm-test-app")  # the other copy, once the first is gone
