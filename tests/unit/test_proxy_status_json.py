"""`sailctl status -o json`'s per-proxy xDS status (meshd.ops.status_dict): the fields
proxy-status and apply read, JSON-ready, and a size that does not grow with the thousands
of names a sidecar subscribes to at 1000 Services."""

import json
from datetime import UTC, datetime

from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2

from sailmesh.meshd.ops import status_dict
from sailmesh.xds import NodeStatus, Snapshot, type_urls
from sailmesh.xds.stream import AdsStream

EDS = type_urls.ENDPOINT


def _stream(names: list[str]) -> AdsStream:
    snap = Snapshot.build({EDS: {n: endpoint_pb2.ClusterLoadAssignment(cluster_name=n) for n in names}})
    stream = AdsStream("sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", snap)
    (sent,) = stream.receive(discovery_pb2.DeltaDiscoveryRequest(
        type_url=EDS, resource_names_subscribe=names)).responses
    nack = discovery_pb2.DeltaDiscoveryRequest(type_url=EDS, response_nonce=sent.nonce)
    nack.error_detail.message = "bad endpoint"
    stream.receive(nack)
    return stream


def _json(stream: AdsStream) -> dict:
    status = NodeStatus(stream.node_id, "v1", datetime(2026, 1, 1, tzinfo=UTC), stream.status())
    return status_dict(status)


def test_status_has_what_proxy_status_reads_and_is_json() -> None:
    body = _json(_stream(["c1", "c2"]))
    assert json.loads(json.dumps(body)) == body
    eds = body["types"][EDS]
    assert (eds["requested"], eds["held"], eds["subscribed"], eds["sent_resources"]) == (
        True, 2, 2, 2)
    assert eds["last_nack"]["version"] == eds["sent_version"]
    assert eds["last_nack"]["message"] == "bad endpoint"
    assert (body["connected_since"], body["snapshot_version"]) == (
        "2026-01-01 00:00:00+00:00", "v1")


def test_status_size_does_not_grow_with_subscribed_names() -> None:
    few = len(json.dumps(_json(_stream([f"outbound|80||svc-{n}" for n in range(3)]))))
    many = len(json.dumps(_json(_stream([f"outbound|80||svc-{n}" for n in range(3000)]))))
    assert many - few < 20, (few, many)
