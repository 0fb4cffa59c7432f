"""Playbooks for the sans-IO ADS stream: exact requests in, exact responses and records out."""

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from xds_messages import cluster, endpoints, listener, resources, route, secret

from sailmesh.xds import Snapshot, type_urls
from sailmesh.xds.stream import Ack, AdsStream, Applied, Ignored, Nack

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


def request(
    type_url: str,
    *,
    nonce: str = "",
    version: str = "",
    names: tuple[str, ...] = (),
    error: str | None = None,
) -> discovery_pb2.DiscoveryRequest:
    req = discovery_pb2.DiscoveryRequest(
        type_url=type_url,
        response_nonce=nonce,
        version_info=version,
        resource_names=list(names),
        node=base_pb2.Node(id="node-1"),
    )
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return req


def ack(
    stream: AdsStream,
    response: discovery_pb2.DiscoveryResponse,
    names: tuple[str, ...] = (),
) -> None:
    out = stream.receive(
        request(response.type_url, nonce=response.nonce, version=response.version_info, names=names)
    )
    assert out.responses == ()
    assert out.records == (Ack(response.type_url, response.version_info, response.nonce),)


def connected(snap: Snapshot) -> AdsStream:
    """A stream through Envoy's startup sequence, everything ACKed."""
    stream = AdsStream("node-1", snap)
    for type_url, names in [
        (CDS, ()),
        (EDS, ("backend",)),
        (LDS, ()),
        (RDS, ("web-routes",)),
        (SDS, ("web-cert",)),
    ]:
        (response,) = stream.receive(request(type_url, names=names)).responses
        ack(stream, response, names)
    return stream


def test_first_request_gets_the_snapshot_and_ack_is_recorded() -> None:
    snap = snapshot()
    stream = AdsStream("node-1", snap)
    out = stream.receive(request(CDS))
    (response,) = out.responses
    assert out.records == ()
    assert response.type_url == CDS
    assert response.version_info == snap.of(CDS).version
    assert response.nonce == "1"
    assert [r.type_url for r in response.resources] == [CDS]
    ack(stream, response)
    status = stream.status()[CDS]
    assert (status.acked_version, status.acked_nonce) == (snap.of(CDS).version, "1")


def test_nonces_are_unique_per_response() -> None:
    stream = connected(snapshot())
    nonces = [s.sent_nonce for s in stream.status().values()]
    assert len(set(nonces)) == 5


def test_nack_is_recorded_and_the_rejected_version_is_not_resent() -> None:
    good = snapshot()
    stream = connected(good)
    bad = snapshot(backend_port=9090)
    (eds,) = stream.update(bad).responses
    out = stream.receive(
        request(
            EDS,
            nonce=eds.nonce,
            version=good.of(EDS).version,
            names=("backend",),
            error="bad port",
        )
    )
    assert out.responses == ()
    assert out.records == (Nack(EDS, bad.of(EDS).version, eds.nonce, "bad port", 3),)
    assert stream.status()[EDS].acked_version == good.of(EDS).version
    assert stream.applied(bad) is Applied.REJECTED
    # The same content again sends nothing; new content is sent.
    assert stream.update(bad).responses == ()
    (again,) = stream.update(snapshot(backend_port=9091)).responses
    assert again.type_url == EDS


def test_stale_nonce_is_ignored_including_its_subscription() -> None:
    stream = connected(snapshot())
    first = stream.update(snapshot(header="one")).responses[0]
    latest = stream.update(snapshot(header="two")).responses[0]
    assert (first.type_url, latest.type_url) == (RDS, RDS)
    out = stream.receive(request(RDS, nonce=first.nonce, names=("web-routes", "other")))
    assert out.responses == ()
    assert out.records == (Ignored(RDS, first.nonce, f"stale nonce; latest sent is {latest.nonce}"),)
    assert stream.status()[RDS].subscribed == frozenset({"web-routes"})
    assert stream.status()[RDS].acked_nonce != latest.nonce


def test_subscription_change_sends_the_new_names() -> None:
    snap = Snapshot.build(
        resources(
            routes=[route("a", cluster="x"), route("b", cluster="x")],
        )
    )
    stream = AdsStream("node-1", snap)
    (only_a,) = stream.receive(request(RDS, names=("a",))).responses
    assert [r.value for r in only_a.resources] == [snap.of(RDS).resources["a"].value]
    out = stream.receive(request(RDS, nonce=only_a.nonce, version=only_a.version_info, names=("a", "b")))
    (both,) = out.responses
    assert len(both.resources) == 2
    assert out.records == (Ack(RDS, only_a.version_info, only_a.nonce),)
    # Unchanged subscription, ACKed: nothing more to send.
    assert (
        stream.receive(request(RDS, nonce=both.nonce, version=both.version_info, names=("a", "b"))).responses
        == ()
    )


def test_subscribed_name_not_in_snapshot_is_sent_when_it_appears() -> None:
    stream = AdsStream("node-1", Snapshot.build(resources()))
    assert stream.receive(request(SDS, names=("later",))).responses == ()
    secrets = resources(secrets=[secret("later", cert_pem=CERT, key_pem=b"k")])
    (response,) = stream.update(Snapshot.build(secrets)).responses
    assert (response.type_url, len(response.resources)) == (SDS, 1)


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


def test_cluster_change_resends_unchanged_endpoints_after_it() -> None:
    # envoyproxy/envoy#13009: a replaced cluster warms until EDS arrives again.
    stream = connected(snapshot())
    changed = Snapshot.build(
        resources(
            listeners=[listener("web", port=8000, route="web-routes", secret="web-cert")],
            routes=[route("web-routes", cluster="backend")],
            clusters=[cluster("backend", connect_timeout_ms=2000)],
            assignments=[endpoints("backend", port=8080)],
            secrets=[secret("web-cert", cert_pem=CERT, key_pem=b"k")],
        )
    )
    assert changed.of(EDS).version == snapshot().of(EDS).version
    assert [r.type_url for r in stream.update(changed).responses] == [CDS, EDS]


def test_requests_before_any_snapshot_are_answered_when_it_arrives() -> None:
    stream = AdsStream("node-1")
    assert stream.receive(request(CDS)).responses == ()
    assert stream.receive(request(LDS)).responses == ()
    out = stream.update(snapshot())
    # Only what was asked for: EDS, RDS and SDS have no subscription yet.
    assert [r.type_url for r in out.responses] == [CDS, LDS]


def test_empty_wildcard_snapshot_is_still_answered() -> None:
    stream = AdsStream("node-1", Snapshot.build(resources()))
    (response,) = stream.receive(request(LDS)).responses
    assert list(response.resources) == []


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
    ack(stream, rds, ("web-routes",))
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
