"""Snapshots: content-hash versions, immutability, input checks, consistency report."""

import pytest
from xds_messages import cluster, endpoints, listener, resources, route, secret

from sailmesh.xds import Snapshot, SnapshotCache, XdsError, type_urls
from sailmesh.xds.cache import Packer

PEM = b"pem"


def complete() -> dict:
    return dict(
        listeners=[listener("web", port=8443, route="web-routes", secret="web-cert")],
        routes=[route("web-routes", cluster="backend")],
        clusters=[cluster("backend")],
        assignments=[endpoints("backend", port=8080)],
        secrets=[secret("web-cert", cert_pem=PEM, key_pem=PEM)],
    )


def test_same_content_same_version_in_any_order() -> None:
    one = Snapshot.build(resources(**complete()))
    parts = complete()
    parts["routes"] = [route("zz", cluster="backend"), *parts["routes"]]
    two = Snapshot.build(resources(**parts))
    reordered = dict(reversed(list(resources(**parts).items())))
    three = Snapshot.build({t: dict(reversed(list(m.items()))) for t, m in reordered.items()})
    assert one.version == Snapshot.build(resources(**complete())).version
    assert two.version == three.version
    assert one.version != two.version
    # Only the route type changed, so only its version moved.
    changed = [t for t in type_urls.ADS_ORDER if one.of(t).version != two.of(t).version]
    assert changed == [type_urls.ROUTE]


def test_snapshot_does_not_see_later_edits_to_the_callers_messages() -> None:
    parts = complete()
    snap = Snapshot.build(resources(**parts))
    before = snap.of(type_urls.CLUSTER).resources["backend"].value
    parts["clusters"][0].connect_timeout.seconds = 30
    assert snap.of(type_urls.CLUSTER).resources["backend"].value == before
    assert Snapshot.build(resources(**parts)).version != snap.version


def test_missing_types_are_served_empty() -> None:
    snap = Snapshot.build({type_urls.CLUSTER: {"backend": cluster("backend")}})
    assert set(snap.types) == set(type_urls.ADS_ORDER)
    assert snap.of(type_urls.LISTENER).names() == frozenset()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"type.googleapis.com/envoy.Nope": {}}, "unknown xDS type"),
        ({type_urls.CLUSTER: {"backend": route("backend", cluster="x")}}, "not a envoy.config"),
        ({type_urls.CLUSTER: {"other": cluster("backend")}}, "names itself 'backend'"),
        ({type_urls.ENDPOINT: {"x": endpoints("backend", port=1)}}, "field cluster_name"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(given: dict, message: str) -> None:
    with pytest.raises(XdsError, match=message):
        Snapshot.build(given)


def test_complete_snapshot_is_consistent() -> None:
    assert Snapshot.build(resources(**complete())).consistent() == []


def test_consistency_reports_every_missing_reference() -> None:
    parts = complete()
    parts["routes"] = []
    parts["assignments"] = []
    parts["secrets"] = []
    assert Snapshot.build(resources(**parts)).consistent() == [
        "listener 'web' needs route configuration 'web-routes'",
        "listener 'web' needs secret 'web-cert'",
        "cluster 'backend' needs cluster load assignment 'backend'",
    ]


def test_cache_reports_whether_the_version_changed() -> None:
    cache = SnapshotCache()
    snap = Snapshot.build(resources(**complete()))
    assert cache.set("a", snap) is True
    assert cache.set("a", Snapshot.build(resources(**complete()))) is False
    assert cache.nodes() == ["a"]
    cache.remove("a")
    assert cache.get("a") is None


def test_a_packer_packs_a_message_shared_by_nodes_once_and_forgets_it_two_rounds_later(
) -> None:
    packer, parts = Packer(), complete()
    shared = resources(**parts)
    packer.start("a")
    one = Snapshot.build(shared, packer)
    packer.start("b")
    two = Snapshot.build(shared, packer)
    assert one.of(type_urls.CLUSTER).resources["backend"] is \
        two.of(type_urls.CLUSTER).resources["backend"]
    # Same content, new message objects: packed anew, same bytes and version.
    assert Snapshot.build(resources(**complete()), packer).version == one.version
    # "a" again opens a round; the one after it forgets what nobody published since.
    for node in ("a", "a"):
        packer.start(node)
        Snapshot.build(resources(**complete()), packer)
    packer.start("b")
    three = Snapshot.build(shared, packer)
    assert three.of(type_urls.CLUSTER).resources["backend"] is not \
        one.of(type_urls.CLUSTER).resources["backend"]
    assert three.version == one.version


def test_a_packed_snapshot_reports_what_it_lacks_as_an_unpacked_one_does() -> None:
    parts = complete()
    del parts["secrets"], parts["assignments"]
    packer = Packer()
    packer.start("a")
    assert Snapshot.build(resources(**parts), packer).consistent() == \
        Snapshot.build(resources(**parts)).consistent() == [
            "listener 'web' needs secret 'web-cert'",
            "cluster 'backend' needs cluster load assignment 'backend'"]


def _clusters(count: int, *, slow: frozenset[int] = frozenset()) -> dict:
    return {f"c{n}": cluster(f"c{n}", connect_timeout_ms=2500 if n in slow else 1000)
            for n in range(count)}


def test_a_build_from_the_last_snapshot_packs_only_what_changed_and_versions_as_a_fresh_one(
) -> None:
    first = _clusters(50)
    old = Snapshot.build({type_urls.CLUSTER: first})
    second = {**first, "c7": cluster("c7", connect_timeout_ms=2500), "new": cluster("new")}
    del second["c3"]
    new = Snapshot.build({type_urls.CLUSTER: second}, previous=old)
    cds, old_cds = new.of(type_urls.CLUSTER), old.of(type_urls.CLUSTER)
    assert (cds.base, cds.touched, cds.dropped) == (old_cds.serial, {"c7", "new"}, {"c3"})
    # What was not touched is the previous packing, not a new one.
    assert cds.resources["c1"] is old_cds.resources["c1"]
    assert set(cds.resources) == set(second)
    # The same content has the same versions whatever it was built from.
    fresh = Snapshot.build({type_urls.CLUSTER: dict(second)})
    assert new.version == fresh.version
    assert dict(cds.versions) == dict(fresh.of(type_urls.CLUSTER).versions)
    back = Snapshot.build({type_urls.CLUSTER: first}, previous=new)
    assert back.version == old.version
    # Nothing changed: the type snapshots are the previous ones.
    again = Snapshot.build({type_urls.CLUSTER: dict(second)}, previous=new)
    assert again.of(type_urls.CLUSTER) is cds
    assert again.of(type_urls.LISTENER) is new.of(type_urls.LISTENER)


def test_a_build_from_the_last_snapshot_checks_what_it_adds() -> None:
    old = Snapshot.build({type_urls.CLUSTER: _clusters(3)})
    with pytest.raises(XdsError, match="names itself 'c1'"):
        Snapshot.build({type_urls.CLUSTER: {**_clusters(3), "x": cluster("c1")}}, previous=old)


def test_problems_are_reported_in_name_order_whatever_the_build_order() -> None:
    old = Snapshot.build({type_urls.CLUSTER: {"m": cluster("m")}})
    new = Snapshot.build({type_urls.CLUSTER: {"m": old.of(type_urls.CLUSTER).messages["m"],
                                              "a": cluster("a")}}, previous=old)
    assert new.problems == (
        "cluster 'a' needs cluster load assignment 'a'",
        "cluster 'm' needs cluster load assignment 'm'",
    )
