"""kubectl's JSONPath templates: the cases of kubectl's JSONPath page and the Istio docs."""

from __future__ import annotations

import pytest

from sailmesh.cli.jsonpath import JSONPathError, execute, relaxed

# The input of kubectl's JSONPath reference page.
DOC = {
    "kind": "List",
    "items": [
        {
            "kind": "None",
            "metadata": {"name": "127.0.0.1", "labels": {"kubernetes.io/hostname": "127.0.0.1"}},
            "status": {"capacity": {"cpu": "4"},
                       "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}]},
        },
        {
            "kind": "None",
            "metadata": {"name": "127.0.0.2"},
            "status": {"capacity": {"cpu": "8"},
                       "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.2"},
                                     {"type": "another", "address": "127.0.0.3"}]},
        },
    ],
    "users": [
        {"name": "myself", "user": {}},
        {"name": "e2e", "user": {"username": "admin", "password": "secret"}},
    ],
}

CASES = [
    ("kind is {.kind}", "kind is List"),
    ("{.kind}", "List"),
    ("{['kind']}", "List"),
    ("{$.kind}", "List"),
    ("{..name}", "127.0.0.1 127.0.0.2 myself e2e"),
    ("{.items[*].metadata.name}", "127.0.0.1 127.0.0.2"),
    ("{.users[0].name}", "myself"),
    ("{.items[*]['metadata.name', 'status.capacity']}",
     '127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}'),
    ("{['kind']}", "List"),
    ("{.items[0]['metadata']['labels']['kubernetes\\.io/hostname']}", "127.0.0.1"),
    ("{.users[?(@.name==\"e2e\")].user.password}", "secret"),
    ("{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}",
     '[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] '),
    ("{.items[0].metadata.labels.kubernetes\\.io/hostname}", "127.0.0.1"),
    ("{.items[-1].metadata.name}", "127.0.0.2"),
    ("{.items[0:1].metadata.name}", "127.0.0.1"),
    ("{.items[*].status.addresses[?(@.type=='another')].address}", "127.0.0.3"),
    ("{.items..metadata.name}", "127.0.0.1 127.0.0.2"),
    ('{range .users[*]}{.name}{"\\t"}{.user.username}{"\\n"}{end}', "myself\t\ne2e\tadmin\n"),
    ("{.users[?(@.user.password)].name}", "e2e"),
    ("{.missing.field}", ""),
    ("{.users[0,1].name}", "myself e2e"),
    ("{.items[1].status.capacity}", '{"cpu":"8"}'),
    ("{.users[1].user}", '{"password":"secret","username":"admin"}'),
]


@pytest.mark.parametrize(("template", "expected"), CASES)
def test_kubectl_reference_cases(template: str, expected: str) -> None:
    assert execute(template, DOC) == expected


def test_union_branches_in_order() -> None:
    assert execute("{['b','a']}", {"a": 1, "b": 2}) == "2 1"


ISTIO_SVC = {
    "metadata": {"name": "istio-ingressgateway"},
    "spec": {"ports": [{"name": "status-port", "port": 15021}, {"name": "http2", "port": 80},
                       {"name": "https", "port": 443}]},
    "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.2"}]}},
}


def test_istio_ingress_recipe() -> None:
    assert execute("{.status.loadBalancer.ingress[0].ip}", ISTIO_SVC) == "127.0.0.2"
    assert execute('{.spec.ports[?(@.name=="http2")].port}', ISTIO_SVC) == "80"
    assert execute('{.spec.ports[?(@.name=="https")].port}', ISTIO_SVC) == "443"
    assert execute("{.status.loadBalancer.ingress[0].hostname}", ISTIO_SVC) == ""


def test_numeric_filters() -> None:
    assert execute("{.spec.ports[?(@.port>100)].name}", ISTIO_SVC) == "status-port https"
    assert execute("{.spec.ports[?(@.port<=80)].name}", ISTIO_SVC) == "http2"


def test_index_out_of_range_is_an_error() -> None:
    with pytest.raises(JSONPathError, match="out of bounds"):
        execute("{.users[5].name}", DOC)


@pytest.mark.parametrize("template", ["{.kind", "{range .items[*]}{.kind}", "{end}", "{.a[x]}"])
def test_bad_templates(template: str) -> None:
    with pytest.raises(JSONPathError):
        execute(template, DOC)


@pytest.mark.parametrize(("expr", "expected"),
                         [(".metadata.name", "{.metadata.name}"),
                          ("metadata.name", "{.metadata.name}"),
                          ("{.metadata.name}", "{.metadata.name}")])
def test_custom_columns_relaxation(expr: str, expected: str) -> None:
    assert relaxed(expr) == expected


def test_go_value_text_for_custom_columns() -> None:
    from sailmesh.cli.jsonpath import go_text

    assert go_text({"b": 1, "a": ["x", "y"]}) == "map[a:[x y] b:1]"
    assert go_text(None) == "<nil>"
    assert go_text(True) == "true"
