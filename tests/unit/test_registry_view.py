"""Which definition of a host a client namespace uses (`registry_view`): the one lookup
behind every proxy's registry (`MeshModel.for_namespace`) and the analyzers
(`MeshModel.service`). Cases follow Istio's initServiceRegistry / appendSidecarServices."""

from __future__ import annotations

import pytest

from sailmesh.model.mesh import build_model
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.loader import load_text

HOST = "api.shop.test"


def _entry(ns: str, second: int, port: int, export: str = "", address: str = "192.0.2.1"
           ) -> str:
    export_to = f"exportTo: [{export}]\n  " if export else ""
    return (f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
            f"metadata: {{name: api, namespace: {ns}, "
            f"creationTimestamp: '2026-01-01T00:00:{second:02d}Z'}}\n"
            f"spec:\n  hosts: [{HOST}]\n  {export_to}"
            f"ports: [{{number: {port}, name: http, protocol: HTTP}}]\n"
            f"  resolution: STATIC\n  endpoints: [{{address: {address}}}]\n---\n")


# (entries as (namespace, created second, exportTo), client namespace → namespace whose
# definition it uses, or None when none is exported to it)
CASES = {
    "oldest wins for all": (
        [("b", 2, ""), ("a", 1, "")], {"a": "a", "b": "a", "c": "a"}),
    "kept to its namespace comes first there": (
        [("a", 1, ""), ("b", 2, "'.'")], {"a": "a", "b": "b", "c": "a"}),
    "exported by name before everywhere": (
        [("a", 1, ""), ("b", 2, "c")], {"a": "a", "b": "a", "c": "b"}),
    "by name and own namespace: the oldest": (
        [("a", 2, "c"), ("c", 3, "'.'"), ("b", 1, "c")], {"a": None, "b": None, "c": "b"}),
    "same time: by namespace": (
        [("z", 1, ""), ("m", 1, "")], {"a": "m", "z": "m"}),
    "hidden everywhere": (
        [("a", 1, "'~'"), ("b", 2, "'.'")], {"a": None, "b": "b", "c": None}),
}


@pytest.mark.parametrize(("entries", "seen"), CASES.values(), ids=CASES.keys())
def test_which_definition_a_namespace_uses(entries: list[tuple[str, int, str]],
                                           seen: dict[str, str | None]) -> None:
    text = "".join(_entry(ns, at, 8000 + i, export, f"192.0.2.{i + 1}")
                   for i, (ns, at, export) in enumerate(entries))
    model = build_model(Snapshot.of(load_text(text, "in.yaml").resources), [])
    assert not model.diagnostics
    port_of = {ns: 8000 + i for i, (ns, _, _) in enumerate(entries)}
    for client, owner in seen.items():
        svc = model.service(HOST, client)
        assert (svc.namespace if svc else None) == owner, client
        view = model.for_namespace(client)
        if svc is None:
            assert not view.services[HOST].visible_to(client)
            continue
        # The proxy's registry holds the same definition, its ports and its endpoints.
        assert view.services[HOST] == svc
        port = port_of[owner]
        assert [p.port for p in svc.ports] == [port]
        ip = f"192.0.2.{list(port_of).index(owner) + 1}"
        assert [e.ip for e in model.service_endpoints(svc, port)] == [ip]
        assert [e.ip for e in view.endpoints[(HOST, port)]] == [ip]
        assert all(h != HOST or p == port for h, p in view.endpoints)
