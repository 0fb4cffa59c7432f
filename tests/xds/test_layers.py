"""Snapshots built from layers (a node's own resources + a mapping several nodes share):
exactly what a fresh flat build of the same resources gives, and streamed as it is."""

import random
from collections import ChainMap

from test_stream import CDS, EDS, ack, connected, request
from xds_messages import cluster, endpoints

from sailmesh.xds import Snapshot
from sailmesh.xds.cache import Packer, SharedLayers, TypeSnapshot
from sailmesh.xds.stream import AdsStream

NODES = ("n0", "n1", "n2", "n3")


class World:
    """Views whose clusters and endpoints their nodes share, and each node's own ones.
    A change to a shared layer makes a new mapping (the contract: a published mapping is
    never changed); an unchanged layer stays the very same object."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.shared = {view: self._layer(f"{view}-s", 12) for view in ("a", "b")}
        self.own = {node: self._layer(f"{node}-o", 2) for node in NODES}
        self.view = {node: "a" if i < 3 else "b" for i, node in enumerate(NODES)}
        self.flat: set[str] = set()  # nodes whose resources come as plain dicts

    def _layer(self, prefix: str, count: int) -> tuple[dict, dict]:
        names = [f"{prefix}{i}" for i in range(count)]
        return ({n: cluster(n) for n in names}, {n: endpoints(n, port=8080) for n in names})

    def change(self) -> None:
        rng = self.rng
        layers = [("shared", v) for v in self.shared] + [("own", n) for n in NODES]
        for _ in range(rng.randint(0, 3)):
            where, key = rng.choice(layers)
            table = self.shared if where == "shared" else self.own
            clusters, assigned = (dict(m) for m in table[key])  # copy on write
            pool = [n for view in self.shared.values() for n in view[0]] + [
                f"{key}-x{i}" for i in range(4)]
            name = rng.choice(pool)
            match rng.choice(["edit", "add", "remove", "endpoints"]):
                case "edit" | "add":
                    clusters[name] = cluster(name, connect_timeout_ms=rng.choice([1000, 2500]))
                    assigned.setdefault(name, endpoints(name, port=8080))
                case "remove":
                    clusters.pop(name, None)
                    assigned.pop(name, None)
                case "endpoints" if name in assigned:
                    assigned[name] = endpoints(name, port=rng.choice([8080, 9090]))
            table[key] = (clusters, assigned)
        if rng.random() < 0.3:
            node = rng.choice(NODES)
            self.view[node] = "b" if self.view[node] == "a" else "a"
        if rng.random() < 0.05:
            self.flat ^= {rng.choice(NODES)}

    def resources(self, node: str) -> dict:
        own, shared = self.own[node], self.shared[self.view[node]]
        layered = {CDS: ChainMap(own[0], shared[0]), EDS: ChainMap(own[1], shared[1])}
        if node in self.flat:
            return {t: dict(m) for t, m in layered.items()}
        return layered


def _same(built: Snapshot, fresh: Snapshot) -> None:
    assert built.version == fresh.version
    for type_url, got in built.types.items():
        want = fresh.of(type_url)
        assert got.version == want.version
        assert dict(got.versions) == dict(want.versions)
        assert dict(got.resources) == dict(want.resources)
        assert dict(got.needs) == dict(want.needs)


def _delta_holds(last: TypeSnapshot, new: TypeSnapshot) -> None:
    """What a stream that holds `last` compares: every name added or changed is touched,
    every name gone is dropped, and nothing present is dropped."""
    if new is last:
        return
    assert new.base == last.serial
    for name, version in new.versions.items():
        if last.versions.get(name) != version:
            assert name in new.touched
    assert {n for n in last.versions if n not in new.versions} <= new.dropped
    assert not any(n in new.versions for n in new.dropped)


def test_layered_builds_equal_fresh_flat_builds_and_stream_the_same() -> None:
    rng = random.Random(7)
    world = World(rng)
    packer = Packer()
    last: dict[str, Snapshot] = {}
    streams: dict[str, tuple[AdsStream, AdsStream]] = {}
    fresh: dict[str, Snapshot] = {}
    for step in range(150):
        if step:
            world.change()
        shared: SharedLayers = {}
        for node in rng.sample(NODES, len(NODES)):  # any node may build a shared layer first
            packer.start(node)
            built = Snapshot.build(world.resources(node), packer, last.get(node), shared)
            full = Snapshot.build({t: dict(m) for t, m in world.resources(node).items()})
            _same(built, full)
            if node in last:
                for type_url in (CDS, EDS):
                    _delta_holds(last[node].of(type_url), built.of(type_url))
            last[node], fresh[node] = built, full
            if node not in streams:
                eds = tuple(built.of(EDS).resources)
                streams[node] = (connected(built, eds=eds), connected(full, eds=eds))
                continue
            chained, plain = streams[node]
            assert chained.applied(built) == plain.applied(full), f"step {step}"
            outputs = [chained.update(built), plain.update(full)]
            assert outputs[0] == outputs[1], f"step {step} {node}"
            for response in outputs[0].responses:
                error = "rejected" if rng.random() < 0.2 else None
                answers = [s.receive(request(response.type_url, nonce=response.nonce,
                                             error=error)) for s in (chained, plain)]
                assert answers[0] == answers[1], f"step {step} {node}"
            assert chained.applied(built) == plain.applied(full), f"step {step} {node}"


def test_a_shared_layer_is_built_once_per_round_and_nodes_keep_theirs_when_unchanged() -> None:
    shared_clusters = {f"s{i}": cluster(f"s{i}") for i in range(50)}
    shared_assigned = {f"s{i}": endpoints(f"s{i}", port=8080) for i in range(50)}

    def node_resources(node: str) -> dict:
        own = {f"{node}-own": cluster(f"{node}-own")}
        return {CDS: ChainMap(own, shared_clusters), EDS: ChainMap({}, shared_assigned)}

    given = {node: node_resources(node) for node in NODES}
    layers: SharedLayers = {}
    first = {node: Snapshot.build(given[node], previous=None, shared=layers) for node in NODES}
    shared_layers = {id(first[node].of(CDS).layers[1]) for node in NODES}  # type: ignore[index]
    assert len(shared_layers) == 1
    # One shared name changes: every node's snapshot touches that name alone.
    shared_clusters = {**shared_clusters, "s3": cluster("s3", connect_timeout_ms=2500)}
    layers = {}
    second = {}
    for node in NODES:
        resources = {CDS: ChainMap(given[node][CDS].maps[0], shared_clusters),
                     EDS: given[node][EDS]}
        second[node] = Snapshot.build(resources, previous=first[node], shared=layers)
        assert second[node].of(CDS).touched == {"s3"}
        assert second[node].of(EDS) is first[node].of(EDS)  # the very same: nothing sent
    assert len({id(s.of(CDS).layers[1]) for s in second.values()}) == 1  # type: ignore[index]
    # A name moves from the shared layer to the node's own: touched, not dropped.
    moved = Snapshot.build({CDS: ChainMap({**given["n1"][CDS].maps[0], "s5": shared_clusters["s5"]},
                                          {n: c for n, c in shared_clusters.items() if n != "s5"}),
                            EDS: given["n1"][EDS]}, previous=second["n1"], shared={})
    assert moved.of(CDS).layers is not None
    assert "s5" in moved.of(CDS).touched and not moved.of(CDS).dropped
    # An own name that the shared layer also holds: built flat, the own one winning.
    clash = {CDS: ChainMap({"s4": cluster("s4", connect_timeout_ms=2500)}, shared_clusters),
             EDS: given["n0"][EDS]}
    flat = Snapshot.build(clash, previous=second["n0"], shared={})
    assert flat.of(CDS).layers is None
    assert flat.of(CDS).version == Snapshot.build({
        CDS: dict(ChainMap(*clash[CDS].maps)), EDS: dict(shared_assigned)}).of(CDS).version
    assert flat.of(CDS).touched == {"s4"} and flat.of(CDS).dropped == {"n0-own"}


def test_acked_layered_snapshots_are_applied() -> None:
    shared = {f"s{i}": cluster(f"s{i}") for i in range(5)}
    assigned = {f"s{i}": endpoints(f"s{i}", port=8080) for i in range(5)}
    snap = Snapshot.build({CDS: ChainMap({"own": cluster("own")}, shared),
                           EDS: ChainMap({}, assigned)})
    stream = connected(snap, eds=tuple(assigned))
    assert stream.applied(snap).name == "APPLIED"
    changed = {**shared, "s1": cluster("s1", connect_timeout_ms=2500)}
    nxt = Snapshot.build({CDS: ChainMap({"own": cluster("own")}, changed),
                          EDS: ChainMap({}, assigned)}, previous=snap)
    responses = stream.update(nxt).responses
    # `own` is a new object of the same content: not sent. A changed cluster's endpoints
    # are sent again with it (Envoy waits for them).
    assert [(r.type_url, list(r.names)) for r in responses] == [
        (CDS, ["s1"]), (EDS, ["s1"])]
    for response in responses:
        ack(stream, response)
    assert stream.applied(nxt).name == "APPLIED"
