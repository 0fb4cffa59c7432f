"""kubectl's printers, selectors and patches over API objects (no mesh needed)."""

from __future__ import annotations

import pytest

from sailmesh.cli.common import label_selector_matches as matches
from sailmesh.cli.printers import PrinterError, parse_output, render, tables
from sailmesh.cli.workload_cmds import merge_patch, strategic_merge

PODS = [
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "curl-1", "namespace": "foo", "labels": {"app": "curl"}},
     "spec": {"containers": [{"name": "curl"}, {"name": "istio-proxy"}], "nodeName": "sailmesh"},
     "status": {"phase": "Running", "podIP": "10.244.0.9",
                "containerStatuses": [{"name": "curl", "ready": True, "restartCount": 1, "state": {"running": {}}},
                                      {"name": "istio-proxy", "ready": True, "restartCount": 0, "state": {"running": {}}}]}},
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "web-1", "namespace": "foo", "labels": {"app": "web"}},
     "spec": {"containers": [{"name": "web"}]},
     "status": {"phase": "Pending",
                "containerStatuses": [{"name": "web", "ready": False, "restartCount": 0,
                                       "state": {"waiting": {"reason": "ErrImageNeverPull"}}}]}},
]


@pytest.mark.parametrize("value", ["bogus", "json=x", "jsonpath", "go-template={{.x}}", "jsonpath={.a"])
def test_unknown_or_bad_output_is_an_error(value: str) -> None:
    with pytest.raises(PrinterError):
        parse_output(value)


def test_jsonpath_on_a_list_and_on_one_object() -> None:
    fmt = parse_output("jsonpath={.items..metadata.name}")
    assert render(PODS, fmt, single=False) == "curl-1 web-1"
    one = parse_output("jsonpath={.status.podIP}")
    assert render(PODS[:1], one, single=True) == "10.244.0.9"


def test_name_output_uses_the_type_prefix() -> None:
    assert render(PODS, parse_output("name"), single=False) == "pod/curl-1\npod/web-1\n"


def test_custom_columns() -> None:
    out = render(PODS, parse_output("custom-columns=NAME:.metadata.name,IP:.status.podIP,"
                                    "CONTAINERS:.spec.containers[*].name"), single=False)
    assert out.splitlines() == ["NAME     IP           CONTAINERS",
                                "curl-1   10.244.0.9   curl,istio-proxy",
                                "web-1    <none>       web"]


def test_pod_table_and_wide() -> None:
    lines = tables(PODS, wide=False, with_namespace=False, with_kind=False).splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["curl-1", "2/2", "Running", "1"]
    assert lines[2].split()[:3] == ["web-1", "0/1", "ErrImageNeverPull"]
    wide = tables(PODS, wide=True, with_namespace=True, with_kind=True).splitlines()
    assert wide[0].split()[:8] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert wide[1].split()[:2] == ["foo", "pod/curl-1"] and "10.244.0.9" in wide[1]


@pytest.mark.parametrize(("labels", "selector", "expected"), [
    ({"app": "curl"}, "app=curl", True),
    ({"app": "curl"}, "app==curl", True),
    ({"app": "curl"}, "app!=curl", False),
    ({"app": "curl", "v": "1"}, "app=curl,v=2", False),
    ({"app": "curl"}, "app", True),
    ({"app": "curl"}, "!app", False),
    ({"app": "curl"}, "app in (web, curl)", True),
    ({"app": "curl"}, "app notin (web,curl)", False),
    ({}, "app notin (web)", True),
])
def test_label_selectors(labels: dict[str, str], selector: str, expected: bool) -> None:
    assert matches(labels, selector) is expected


def test_strategic_merge_merges_containers_by_name() -> None:
    dep = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}}
    patched = strategic_merge(dep, {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "z"}]}}}})
    assert patched["spec"]["template"]["spec"]["containers"] == [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}]


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    # RFC 7386 §3 example.
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert merge_patch({"l": [1, 2]}, {"l": [3]}) == {"l": [3]}
