"""Hostile manifests, generated: every kind of input Kubernetes or Istio would refuse, plus
inputs meant to freeze or break the mesh (alias bombs, deep nesting, lone surrogates,
huge objects, impossible replica counts, ports that break iptables).

`hostile_cases()` returns (name, text, expected) with expected "reject" or "accept"; an
accepted case must be harmless (it applies, and the mesh keeps serving).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import yaml

Case = tuple[str, str, str]
NS = "hostile"


def _dump(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True)


def service(name: str = "svc", port: Any = 80, target: Any = 8080, **extra: Any) -> dict[str, Any]:
    ports = [{"name": "http", "port": port, "targetPort": target, **extra}]
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"app": "nothing"}, "ports": ports}}


def deployment(name: str = "dep", replicas: Any = 0, pod: dict[str, Any] | None = None,
               container: dict[str, Any] | None = None,
               labels: dict[str, Any] | None = None) -> dict[str, Any]:
    c = {"name": "app", "image": "curlimages/curl", "command": ["sleep", "3650d"],
         **(container or {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name, **(labels or {})}},
                                  "spec": {"containers": [c], **(pod or {})}}}}


def config_map(name: str = "cm", data: dict[str, Any] | None = None,
               meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NS, **(meta or {})},
            "data": data if data is not None else {"a": "b"}}


def virtual_service(timeout: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "vs", "namespace": NS},
            "spec": {"hosts": ["svc"], "http": [{"timeout": timeout,
                                                 "route": [{"destination": {"host": "svc"}}]}]}}


def _volume_pod(volume: dict[str, Any], mount: dict[str, Any] | None = None) -> dict[str, Any]:
    mount = {"name": "v", "mountPath": "/data", **(mount or {})}
    return deployment(pod={"volumes": [{"name": "v", **volume}]},
                      container={"volumeMounts": [mount]})


BAD_PORTS = [0, -1, 65536, 70000, 2**31, 2**63, True, False, "80", "", 1.5, None, [80], {"a": 1}]
BAD_NAMES = ["../x", "../../../etc", "A", "-a", "a-", "a" * 254, "a/b", "a b", "a\tb", "é",
             "a_b", ".", "..", "a..b/c", "*", "$(id)"]
BAD_MODES = [0o6777, 0o4755, 0o2755, 0o1777, 0o7777, -1, 4096, 2**40]
BAD_PATHS = ["../x", "../../etc/passwd", "/etc/passwd", "..", "a/../../b", "a/..", "/"]
BAD_KEYS = ["../x", "/abs", "..", "..a", "a/b", "a b", "", "a" * 254]
BAD_MOUNTS = ["", "relative", "data", "/", "/a/../../etc", "/..", "./x"]
BAD_DURATIONS = ["soon", "10", "1d", "", "1.5.5s", "-", "s", "1 s", "∞"]
BAD_REPLICAS = [1000000000000, 111, 2**31, -1, True, "3", 1.5]


def _structured() -> Iterator[Case]:
    for i, port in enumerate(BAD_PORTS):
        yield f"svc-port-{i}", _dump(service(port=port)), "reject"
        yield f"svc-target-{i}", _dump(service(name=f"tp{i}", target=port)), "reject" if port is not None \
            else "accept"
        yield f"container-port-{i}", _dump(deployment(container={"ports": [
            {"containerPort": port}]})), "reject"
        yield f"node-port-{i}", _dump(service(name=f"np{i}", nodePort=port)), "reject" if port is not None else "accept"
    for i, name in enumerate(BAD_NAMES):
        yield f"meta-name-{i}", _dump(config_map(name=name)), "reject"
        yield f"sa-name-{i}", _dump(deployment(pod={"serviceAccountName": name})), "reject"
        yield f"container-name-{i}", _dump(deployment(container={"name": name})), "reject"
        yield f"volume-name-{i}", _dump(deployment(pod={"volumes": [
            {"name": name, "emptyDir": {}}]})), "reject"
        # Label keys are qualified names: upper case, `_` and one `prefix/` are fine there.
        valid_key = name in ("A", "a_b", "a/b")
        yield f"label-key-{i}", _dump(config_map(name=f"lk{i}", meta={"labels": {name: "x"}})), \
            "accept" if valid_key else "reject"
    for i, mode in enumerate(BAD_MODES):
        yield f"cm-default-mode-{i}", _dump(_volume_pod(
            {"configMap": {"name": "cm", "defaultMode": mode}})), "reject"
        yield f"secret-default-mode-{i}", _dump(_volume_pod(
            {"secret": {"secretName": "s", "defaultMode": mode}})), "reject"
        yield f"item-mode-{i}", _dump(_volume_pod({"configMap": {
            "name": "cm", "items": [{"key": "a", "path": "a", "mode": mode}]}})), "reject"
    for i, path in enumerate(BAD_PATHS):
        yield f"item-path-{i}", _dump(_volume_pod({"configMap": {
            "name": "cm", "items": [{"key": "a", "path": path}]}})), "reject"
        yield f"sub-path-{i}", _dump(_volume_pod({"emptyDir": {}}, {"subPath": path})), "reject"
    for i, key in enumerate(BAD_KEYS):
        yield f"item-key-{i}", _dump(_volume_pod({"configMap": {
            "name": "cm", "items": [{"key": key, "path": "a"}]}})), "reject"
        yield f"cm-key-{i}", _dump(config_map(data={key: "x"})), "reject"
    for i, mount in enumerate(BAD_MOUNTS):
        yield f"mount-path-{i}", _dump(_volume_pod({"emptyDir": {}}, {"mountPath": mount})), "reject"
    for i, duration in enumerate(BAD_DURATIONS):
        yield f"timeout-{i}", _dump(virtual_service(duration)), "reject"
    for i, replicas in enumerate(BAD_REPLICAS):
        yield f"replicas-{i}", _dump(deployment(replicas=replicas)), "reject"
    for i, value in enumerate(["x" * 64, "-x", "x-", "a b", "ä", "x" * 10_000_000]):
        # Placed by text: dumping a 10 MB value through PyYAML takes seconds.
        cm, dep = config_map(meta={"labels": {"k": "VALUE"}}), deployment(labels={"k": "VALUE"})
        yield f"label-value-{i}", _dump(cm).replace("VALUE", value), "reject"
        yield f"template-label-{i}", _dump(dep).replace("VALUE", value), "reject"
    yield "annotations-300k", _dump(config_map(meta={"annotations": {
        f"k{i}": "x" * 1000 for i in range(300)}})), "reject"
    yield "cm-data-1200k", _dump(config_map(data={f"k{i}": "x" * 100_000 for i in range(12)})), "reject"
    yield "cm-data-4m", _dump(config_map(data={"big": "BIG"})).replace("BIG", "x" * (4 << 20)), \
        "reject"
    for field in ("command", "args"):
        yield f"nul-{field}", _dump(deployment(container={field: ["a\0b"]})), "reject"
    yield "nul-env", _dump(deployment(container={"env": [{"name": "A", "value": "a\0"}]})), "reject"
    yield "env-name-eq", _dump(deployment(container={"env": [{"name": "A=B"}]})), "reject"
    yield "two-volume-types", _dump(_volume_pod({"emptyDir": {}, "configMap": {"name": "x"}})), "reject"
    yield "dup-mount-path", _dump(deployment(pod={"volumes": [{"name": "v", "emptyDir": {}}]},
                                             container={"volumeMounts": [
                                                 {"name": "v", "mountPath": "/d"},
                                                 {"name": "v", "mountPath": "/d/"}]})), "reject"
    yield "grace-negative", _dump(deployment(pod={"terminationGracePeriodSeconds": -5})), "reject"
    yield "bad-target-name", _dump(service(target="Not_A_Name")), "reject"
    yield "gateway-port-true", _dump({
        "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": NS},
        "spec": {"selector": {"istio": "ingressgateway"},
                 "servers": [{"port": {"number": True, "name": "http", "protocol": "HTTP"},
                              "hosts": ["*"]}]}}), "reject"


def _alias_bomb(levels: int, width: int) -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb, namespace: hostile}",
             "x:", f"  a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def _raw() -> Iterator[Case]:
    for levels, width in [(9, 9), (6, 9), (20, 2), (30, 3), (5, 20), (12, 5)]:
        yield f"alias-bomb-{levels}x{width}", _alias_bomb(levels, width), "reject"
    yield "alias-recursive-seq", "a: &a [*a]\n", "reject"
    yield "alias-recursive-map", "a: &a {b: *a}\n", "reject"
    yield "alias-recursive-deep", "a: &a {b: {c: [1, {d: *a}]}}\n", "reject"
    for depth in (150, 1000, 5000, 100_000):
        yield f"nest-flow-{depth}", "a: " + "[" * depth + "]" * depth + "\n", "reject"
        yield f"nest-map-{depth}", "a: " + "{a: " * depth + "1" + "}" * depth + "\n", "reject"
        yield f"nest-json-{depth}", '{"a":' * depth + "1" + "}" * depth, "reject"
    yield "nest-block-200", "".join("  " * i + "k:\n" for i in range(200)), "reject"
    for i, where in enumerate(["data: {a: X}", "metadata: {name: cm, labels: {a: X}}",
                               "metadata: {name: cm, annotations: {a: X}}", "data: {X: a}",
                               "metadata: {name: X}"]):
        body = where.replace("X", '"\\ud800"')
        meta = "" if "metadata" in where else "metadata: {name: cm, namespace: hostile}\n"
        yield f"surrogate-{i}", f"apiVersion: v1\nkind: ConfigMap\n{meta}{body}\n", "reject"
    yield "surrogate-json", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},' \
        '"data":{"a":"\\udfff"}}', "reject"
    yield "surrogate-pair-ok", 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: emoji, ' \
        'namespace: hostile}\ndata: {a: "\\U0001F600"}\n', "accept"
    yield "not-an-object", "- 1\n- 2\n", "reject"
    yield "scalar", "hello\n", "reject"
    yield "list-items-not-list", "apiVersion: v1\nkind: List\nitems: 3\n", "reject"
    yield "metadata-string", "apiVersion: v1\nkind: ConfigMap\nmetadata: x\n", "reject"
    yield "spec-list", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: []\n", "reject"
    yield "tab-indent", "apiVersion: v1\nkind: ConfigMap\n\tmetadata: {}\n", "reject"
    yield "bad-base64", _dump({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "s", "namespace": NS}, "data": {"a": "!!!"}}), "reject"
    yield "binary-tag", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n" \
        "data: {a: !!python/object:os.system [id]}\n", "reject"


def _harmless() -> Iterator[Case]:
    """Unusual but valid: accepted, and nothing breaks."""
    yield "port-65535", _dump(service(name="edge", port=65535, target=1)), "accept"
    yield "named-target", _dump(service(name="named", target="http-alt")), "accept"
    yield "label-63", _dump(config_map(name="l63", meta={"labels": {"k": "x" * 63}})), "accept"
    yield "mode-0777", _dump(deployment(name="m777", pod={"volumes": [
        {"name": "v", "configMap": {"name": "cm", "defaultMode": 0o777}}]})), "accept"
    yield "replicas-zero", _dump(deployment(name="zero", replicas=0)), "accept"
    yield "timeout-0s", _dump(virtual_service("0s")), "accept"
    yield "small-alias", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: alias, namespace: " \
        "hostile, labels: &l {a: b}, annotations: *l}\ndata: {x: y}\n", "accept"
    yield "unicode-text", _dump(config_map(name="uni", data={"a": "héllo → 世界"})), "accept"


GENERATORS: tuple[Callable[[], Iterator[Case]], ...] = (_structured, _raw, _harmless)


def hostile_cases() -> list[Case]:
    cases = [c for gen in GENERATORS for c in gen()]
    names = [c[0] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases
