"""Playbooks for the sans-IO delta ADS stream: exact requests in, exact responses and
records out."""

import random

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from xds_messages import cluster, endpoints, listener, resources, route, secret

from sailmesh.xds import Snapshot, type_urls
from sailmesh.xds.cache import Packer, TypeSnapshot
from sailmesh.xds.stream import Ack, AdsStream, Applied, Entries, Ignored, Nack, Response

LDS, RDS, CDS, EDS, SDS = (
    type_urls.LISTENER,
    type_urls.ROUTE,
    type_urls.CLUSTER,
    type_urls.ENDPOINT,
    type_urls.SECRET,
)
CERT = b"-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"


def snapshot(*, backend_port: int = 8080, header: str = "", secret_key: bytes = b"k") -> Snapshot:
    return Snapshot.build(
        resources(
            listeners=[listener("web", port=8000, route="web-routes", secret="web-cert")],
            routes=[route("web-routes", cluster="backend", header=header)],
            clusters=[cluster("backend")],
            assignments=[endpoints("backend", port=backend_port)],
            secrets=[secret("web-cert", cert_pem=CERT, key_pem=secret_key)],
        )
    )


def many(count: int, *, slow: frozenset[str] = frozenset(), port: int = 8080) -> Snapshot:
    """`count` EDS clusters c0, c1, … with their endpoints; those in `slow` differ."""
    names = [f"c{n}" for n in range(count)]
    return Snapshot.build(resources(
        clusters=[cluster(n, connect_timeout_ms=2500 if n in slow else 1000) for n in names],
        assignments=[endpoints(n, port=port) for n in names],
    ))


def request(
    type_url: str,
    *,
    nonce: str = "",
    subscribe: tuple[str, ...] = (),
    unsubscribe: tuple[str, ...] = (),
    initial: dict[str, str] | None = None,
    error: str | None = None,
) -> discovery_pb2.DeltaDiscoveryRequest:
    req = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url,
        response_nonce=nonce,
        resource_names_subscribe=list(subscribe),
        resource_names_unsubscribe=list(unsubscribe),
        initial_resource_versions=initial or {},
        node=base_pb2.Node(id="node-1"),
    )
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return req


def ack(stream: AdsStream, response: Response) -> None:
    out = stream.receive(request(response.type_url, nonce=response.nonce))
    assert out.responses == ()
    assert out.records == (Ack(response.type_url, response.system_version_info, response.nonce),)


def sent(response: Response) -> dict[str, str]:
    return {r.name: r.version for r in response.message().resources}


def connected(snap: Snapshot, eds: tuple[str, ...] = ("backend",)) -> AdsStream:
    """A stream through Envoy's startup sequence, everything ACKed."""
    stream = AdsStream("node-1", snap)
    for type_url, names in [(CDS, ()), (EDS, eds), (LDS, ()), (RDS, ("web-routes",)),
                            (SDS, ("web-cert",))]:
        for response in stream.receive(request(type_url, subscribe=names)).responses:
            ack(stream, response)
    return stream


def test_first_request_gets_the_snapshot_and_ack_is_recorded() -> None:
    snap = snapshot()
    stream = AdsStream("node-1", snap)
    out = stream.receive(request(CDS))
    (response,) = out.responses
    assert out.records == ()
    assert (response.type_url, response.nonce) == (CDS, "1")
    assert response.system_version_info == snap.of(CDS).version
    assert sent(response) == {"backend": snap.of(CDS).versions["backend"]}
    assert response.message().resources[0].resource == snap.of(CDS).resources["backend"]
    ack(stream, response)
    status = stream.status()[CDS]
    assert (status.acked_version, status.acked_nonce, status.wildcard) == (
        snap.of(CDS).version, "1", True)


def test_explicit_wildcard_is_the_same_as_the_legacy_empty_request() -> None:
    stream = AdsStream("node-1", snapshot())
    (response,) = stream.receive(request(LDS, subscribe=("*",))).responses
    assert list(sent(response)) == ["web"]


def test_one_changed_cluster_is_sent_alone_with_its_endpoints() -> None:
    names = tuple(f"c{n}" for n in range(50))
    stream = connected(many(50), eds=names)
    changed = many(50, slow=frozenset({"c7"}))
    cds, eds = stream.update(changed).responses
    assert (cds.type_url, list(sent(cds)), list(cds.removed_resources)) == (CDS, ["c7"], [])
    # Unchanged endpoints, resent: the replaced cluster warms until it gets them.
    assert (eds.type_url, list(sent(eds))) == (EDS, ["c7"])
    assert stream.status()[CDS].sent_resources == 51


def test_a_removed_cluster_is_in_removed_resources() -> None:
    stream = connected(many(3), eds=("c0", "c1", "c2"))
    fewer = Snapshot.build(resources(clusters=[cluster("c0"), cluster("c1")],
                                     assignments=[endpoints(n, port=8080) for n in ("c0", "c1")]))
    cds, eds = stream.update(fewer).responses
    assert (list(cds.names), list(cds.removed_resources)) == ([], ["c2"])
    assert (list(eds.names), list(eds.removed_resources)) == ([], ["c2"])
    # Envoy drops the cluster's subscription; nothing more is sent.
    assert stream.receive(request(EDS, unsubscribe=("c2",))).responses == ()


def test_nack_keeps_the_proxy_on_its_old_config_and_is_not_resent() -> None:
    good = snapshot()
    stream = connected(good)
    bad = snapshot(backend_port=9090)
    (eds,) = stream.update(bad).responses
    out = stream.receive(request(EDS, nonce=eds.nonce, error="bad port"))
    assert out.responses == ()
    assert out.records == (Nack(EDS, bad.of(EDS).version, eds.nonce, "bad port", 3),)
    assert stream.status()[EDS].acked_version == good.of(EDS).version
    assert stream.applied(bad) is Applied.REJECTED
    # The same content again sends nothing; going back to the good content is sent.
    assert stream.update(bad).responses == ()
    (again,) = stream.update(good).responses
    assert sent(again) == {"backend": good.of(EDS).versions["backend"]}
    ack(stream, again)
    assert stream.applied(good) is Applied.APPLIED


def test_reconnect_sends_only_what_differs_from_initial_resource_versions() -> None:
    old, new = many(4), many(4, slow=frozenset({"c1"}), port=9000)
    held = dict(old.of(CDS).versions)
    held["gone"] = "v0"
    stream = AdsStream("node-1", new)
    (cds,) = stream.receive(request(CDS, initial=held)).responses
    assert (list(sent(cds)), list(cds.removed_resources)) == (["c1"], ["gone"])
    # EDS: every assignment changed port; one the proxy holds unchanged would not be sent.
    same = {n: new.of(EDS).versions[n] if n == "c3" else "old" for n in ("c0", "c1", "c2", "c3")}
    (eds,) = stream.receive(request(EDS, subscribe=tuple(same), initial=same)).responses
    assert list(sent(eds)) == ["c0", "c1", "c2"]
    nothing = AdsStream("node-1", old)
    (empty,) = nothing.receive(request(CDS, initial=dict(old.of(CDS).versions))).responses
    assert (list(empty.names), list(empty.removed_resources)) == ([], [])


def test_responses_in_flight_are_confirmed_in_order() -> None:
    stream = connected(snapshot())
    first, = stream.update(snapshot(header="one")).responses
    latest, = stream.update(snapshot(header="two")).responses
    out = stream.receive(request(RDS, nonce=first.nonce))
    assert out.records == (Ack(RDS, first.system_version_info, first.nonce),)
    assert stream.applied(snapshot(header="two")) is Applied.PENDING
    ack(stream, latest)
    assert stream.applied(snapshot(header="two")) is Applied.APPLIED
    late = stream.receive(request(RDS, nonce=first.nonce, subscribe=("other",)))
    assert late.records == (Ignored(RDS, first.nonce, "not a response in flight on this stream"),)
    # Its subscription change is honoured all the same.
    assert stream.status()[RDS].subscribed == frozenset({"web-routes", "other"})


def test_subscribing_sends_the_new_name_only_and_a_known_name_again() -> None:
    snap = Snapshot.build(resources(routes=[route("a", cluster="x"), route("b", cluster="x")]))
    stream = AdsStream("node-1", snap)
    (only_a,) = stream.receive(request(RDS, subscribe=("a",))).responses
    assert list(sent(only_a)) == ["a"]
    out = stream.receive(request(RDS, nonce=only_a.nonce, subscribe=("b",)))
    assert [list(sent(r)) for r in out.responses] == [["b"]]
    assert out.records == (Ack(RDS, only_a.system_version_info, only_a.nonce),)
    # The protocol: a name subscribed again is sent again, the client may have dropped it.
    (again,) = stream.receive(request(RDS, subscribe=("a",))).responses
    assert list(sent(again)) == ["a"]
    assert stream.receive(request(RDS, unsubscribe=("a", "never"))).responses == ()
    assert stream.status()[RDS].subscribed == frozenset({"b"})


def test_switching_to_a_wildcard_subscription_sends_every_name_not_held() -> None:
    stream = AdsStream("node-1", many(3))
    (first,) = stream.receive(request(EDS, subscribe=("c0",))).responses
    ack(stream, first)
    (rest,) = stream.receive(request(EDS, subscribe=("*",))).responses
    assert list(sent(rest)) == ["c1", "c2"]


def test_subscribed_name_not_in_snapshot_is_sent_when_it_appears() -> None:
    stream = AdsStream("node-1", Snapshot.build(resources()))
    assert stream.receive(request(SDS, subscribe=("later",))).responses == ()
    secrets = resources(secrets=[secret("later", cert_pem=CERT, key_pem=b"k")])
    (response,) = stream.update(Snapshot.build(secrets)).responses
    assert (response.type_url, list(sent(response))) == (SDS, ["later"])


def test_only_changed_types_are_pushed() -> None:
    stream = connected(snapshot())
    assert stream.update(snapshot()).responses == ()
    (pushed,) = stream.update(snapshot(header="new")).responses
    assert pushed.type_url == RDS
    (pushed,) = stream.update(snapshot(header="new", secret_key=b"rotated")).responses
    assert pushed.type_url == SDS


def test_push_order_is_cds_eds_lds_rds_sds() -> None:
    stream = connected(snapshot())
    changed = Snapshot.build(
        resources(
            listeners=[listener("web", port=8001, route="web-routes", secret="web-cert")],
            routes=[route("web-routes", cluster="backend", header="h")],
            clusters=[cluster("backend", connect_timeout_ms=2000)],
            assignments=[endpoints("backend", port=1)],
            secrets=[secret("web-cert", cert_pem=CERT, key_pem=b"other")],
        )
    )
    out = stream.update(changed)
    assert [r.type_url for r in out.responses] == [CDS, EDS, LDS, RDS, SDS]


def test_requests_before_any_snapshot_are_answered_when_it_arrives() -> None:
    stream = AdsStream("node-1")
    assert stream.receive(request(CDS)).responses == ()
    assert stream.receive(request(LDS)).responses == ()
    out = stream.update(snapshot())
    # Only what was asked for: EDS, RDS and SDS have no subscription yet.
    assert [r.type_url for r in out.responses] == [CDS, LDS]


def test_empty_wildcard_snapshot_is_still_answered_once() -> None:
    stream = AdsStream("node-1", Snapshot.build(resources()))
    (response,) = stream.receive(request(LDS)).responses
    assert list(response.names) == []
    assert stream.update(Snapshot.build(resources(routes=[route("r", cluster="x")]))).responses == ()


def test_applied_waits_for_every_subscribed_type() -> None:
    snap = snapshot()
    stream = AdsStream("node-1", snap)
    assert stream.applied(snap) is Applied.PENDING
    (cds,) = stream.receive(request(CDS)).responses
    ack(stream, cds)
    assert stream.applied(snap) is Applied.PENDING  # LDS not even requested yet
    stream = connected(snap)
    assert stream.applied(snap) is Applied.APPLIED
    newer = snapshot(header="x")
    (rds,) = stream.update(newer).responses
    assert stream.applied(newer) is Applied.PENDING
    ack(stream, rds)
    assert stream.applied(newer) is Applied.APPLIED


def test_unsubscribed_non_wildcard_types_do_not_hold_up_applied() -> None:
    snap = Snapshot.build(resources(secrets=[secret("unused", cert_pem=CERT, key_pem=b"k")]))
    stream = AdsStream("node-1", snap)
    for type_url in (CDS, LDS):
        (response,) = stream.receive(request(type_url)).responses
        ack(stream, response)
    assert stream.applied(snap) is Applied.APPLIED


def test_unknown_type_is_ignored() -> None:
    stream = AdsStream("node-1", snapshot())
    out = stream.receive(request("type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"))
    assert out.responses == ()
    assert isinstance(out.records[0], Ignored)


def test_snapshots_built_from_the_last_one_stream_exactly_as_fresh_ones() -> None:
    """A seeded run of changes, subscriptions, ACKs and NACKs: a stream fed snapshots built
    incrementally (only touched names compared) sends what a stream fed fresh builds sends."""
    rng = random.Random(11)
    messages = {f"c{n}": cluster(f"c{n}") for n in range(30)}
    assignments = {f"c{n}": endpoints(f"c{n}", port=8080) for n in range(30)}
    incremental = Snapshot.build(resources(clusters=messages.values(),
                                           assignments=assignments.values()))
    chained = connected(incremental, eds=tuple(assignments))
    fresh = connected(Snapshot.build(resources(clusters=messages.values(),
                                               assignments=assignments.values())),
                      eds=tuple(assignments))
    for step in range(100):
        for _ in range(rng.randint(0, 4)):
            name = f"c{rng.randrange(40)}"
            match rng.choice(["edit", "remove", "endpoints", "endpoints"]):
                case "edit":
                    messages[name] = cluster(name, connect_timeout_ms=rng.choice([1000, 2500]))
                    assignments.setdefault(name, endpoints(name, port=8080))
                case "remove":
                    messages.pop(name, None)
                    assignments.pop(name, None)
                case "endpoints" if name in assignments:
                    assignments[name] = endpoints(name, port=rng.choice([8080, 9090]))
        parts = {CDS: dict(messages), EDS: dict(assignments)}
        incremental = Snapshot.build(parts, previous=incremental)
        full = Snapshot.build({t: dict(m) for t, m in parts.items()})
        assert incremental.version == full.version
        # Asked about a snapshot it does not have yet, a stream compares what it holds.
        before = chained.applied(incremental)
        assert before == fresh.applied(full), f"step {step}"
        outputs = [chained.update(incremental), fresh.update(full)]
        assert outputs[0] == outputs[1], f"step {step}"
        if any(r.names or r.removed_resources for r in outputs[0].responses):
            assert before is not Applied.APPLIED, f"step {step}"
        responses = list(outputs[0].responses)
        if step % 2 == 0:  # Envoy changes what it subscribes to, before the ACKs
            responses += resubscribe(rng, chained, fresh, step)
        for response in responses:
            error = "rejected" if rng.random() < 0.2 else None
            answers = [s.receive(request(response.type_url, nonce=response.nonce, error=error))
                       for s in (chained, fresh)]
            assert answers[0] == answers[1], f"step {step}"
        if step % 3 == 0:  # and after them
            for response in resubscribe(rng, chained, fresh, step):
                acks = [s.receive(request(EDS, nonce=response.nonce)) for s in (chained, fresh)]
                assert acks[0] == acks[1], f"step {step}"
        assert chained.applied(incremental) == fresh.applied(full), f"step {step}"


def resubscribe(rng: random.Random, chained: AdsStream, fresh: AdsStream,
                step: int) -> list[Response]:
    """One EDS request subscribing some names and unsubscribing others, given to both
    streams: they must answer the same (the chained one compares only the new names)."""
    names = [f"c{rng.randrange(40)}" for _ in range(rng.randint(1, 4))]
    split = rng.randint(0, len(names))
    change = {"subscribe": tuple(names[:split]), "unsubscribe": tuple(names[split:])}
    outputs = [s.receive(request(EDS, **change)) for s in (chained, fresh)]
    assert outputs[0] == outputs[1], f"step {step}: {change}"
    return list(outputs[0].responses)


def whole(target: TypeSnapshot, response: Response) -> bytes:
    """The response as one message built from the snapshot and serialised (the old way)."""
    return discovery_pb2.DeltaDiscoveryResponse(
        system_version_info=target.version, type_url=response.type_url, nonce=response.nonce,
        resources=[discovery_pb2.Resource(name=n, version=target.versions[n],
                                          resource=target.resources[n]) for n in response.names],
        removed_resources=response.removed_resources).SerializeToString()


def test_responses_from_shared_entries_are_the_whole_message_byte_for_byte() -> None:
    """Two nodes' streams share one server's `Entries` across seeded edits, removals and
    rotations: every response is exactly the serialised message, a resource both nodes
    are sent is encoded once, and a changed resource is never sent from a stale entry."""
    rng = random.Random(5)
    entries, packer = Entries(), Packer()
    clusters = {f"c{n}": cluster(f"c{n}") for n in range(20)}
    own = {"a": cluster("own"), "b": cluster("own", connect_timeout_ms=3000)}
    snaps: dict[str, Snapshot | None] = {"a": None, "b": None}
    streams: dict[str, AdsStream] = {}
    for step in range(60):
        for _ in range(rng.randint(1, 3)):
            name = f"c{rng.randrange(25)}"
            if rng.random() < 0.3:
                clusters.pop(name, None)
            else:
                clusters[name] = cluster(name, connect_timeout_ms=rng.choice([1000, 2000, 4000]))
        outputs = []
        for node in snaps:
            packer.start(node)
            snap = Snapshot.build(resources(clusters=[*clusters.values(), own[node]]), packer,
                                  snaps[node])
            snaps[node] = snap
            if node not in streams:
                streams[node] = AdsStream(node, snap, entries=entries)
                outputs.append(streams[node].receive(request(CDS)))
            else:
                outputs.append(streams[node].update(snap))
            for response in outputs[-1].responses:
                assert response.wire == whole(snap.of(CDS), response), f"step {step}"
                assert [r.name for r in response.message().resources] == list(response.names)
                ack(streams[node], response)
        shared = sorted(clusters)[:1]
        assert [entries.get(snaps["a"].of(CDS), n) is entries.get(snaps["b"].of(CDS), n)
                for n in shared] == [True] * len(shared), f"step {step}"
        if step % 3 == 0:
            entries.rotate()
