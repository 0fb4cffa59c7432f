"""kubectl's printers, selectors and patches over API objects (no mesh needed)."""

from __future__ import annotations

import pytest

from sailmesh.cli import describe_cmd
from sailmesh.cli.cluster_view import ClusterView, pod_status_text
from sailmesh.cli.printers import PrinterError, parse_output, render, tables
from sailmesh.cli.workload_cmds import merge_patch, strategic_merge
from sailmesh.resources.selectors import label_selector_matches as matches

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


# The daemon's record of a pod that cannot start (image without a local equivalent).
BLOCKED = {"namespace": "foo", "name": "web-v1-5d8c7b9f4c-x2x7k", "deployment": "web-v1",
           "phase": "Pending", "ready": False, "restarts": 0, "ip": "",
           "message": "image 'example.com/web:1' has no local equivalent",
           "reason": "ImagePullBackOff", "waiting": "web",
           "events": [["Warning", "Failed", 'Failed to pull image "example.com/web:1": x'],
                      ["Warning", "Failed", "Error: ErrImagePull"]],
           "containers": 2, "container_names": ["web", "istio-proxy"],
           "labels": {"app": "web"}, "started_at": 0, "logs": {}}


def test_a_pod_that_cannot_pull_its_image_reads_as_on_kubernetes() -> None:
    view = ClusterView(resources=[], status={"pods": [BLOCKED]})
    (pod,) = view.objects("Pod", "foo")
    assert pod_status_text(pod, BLOCKED) == "ImagePullBackOff"
    web, proxy = pod["status"]["containerStatuses"]
    assert web["state"]["waiting"] == {"reason": "ImagePullBackOff", "message": BLOCKED["message"]}
    assert proxy["state"]["waiting"] == {}
    assert pod["metadata"]["ownerReferences"][0]["name"] == "web-v1-5d8c7b9f4c"
    line = tables([pod], wide=False, with_namespace=False, with_kind=False).splitlines()[1]
    assert line.split()[:3] == [BLOCKED["name"], "0/2", "ImagePullBackOff"]
    text = "\n".join(describe_cmd._pod(pod, BLOCKED))
    assert "Reason:           ImagePullBackOff" in text
    assert "Reason:           ContainerCreating" in text  # istio-proxy, not created yet
    events = text.split("Events:")[1].splitlines()
    assert events[1].split()[:2] == ["Type", "Reason"]
    assert events[3].split()[:3] == ["Warning", "Failed", "-"]
    assert events[3].endswith('Failed to pull image "example.com/web:1": x')
    assert events[4].endswith("Error: ErrImagePull")
