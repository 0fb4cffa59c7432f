"""XdsServer over a real Unix socket with scripted gRPC clients standing in for proxies."""

import asyncio
import threading
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from xds_messages import cluster, resources

from sailmesh.xds import XdsError, XdsEvent, XdsServer, type_urls


class FakeProxy:
    """One delta ADS stream driven by the test, as Envoy would drive it."""

    def __init__(self, socket: Path, node_id: str) -> None:
        self.node_id = node_id
        self.channel = grpc.aio.insecure_channel(f"unix:{socket}")
        self.call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel).DeltaAggregatedResources()
        self.first = True

    async def ask(self, type_url: str, nonce: str = "", *, subscribe: tuple[str, ...] = (),
                  initial: dict[str, str] | None = None, error: str = "") -> None:
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url, response_nonce=nonce, resource_names_subscribe=subscribe,
            initial_resource_versions=initial or {})
        if error:
            request.error_detail.message = error
        if self.first:
            request.node.CopyFrom(base_pb2.Node(id=self.node_id))
            self.first = False
        await self.call.write(request)

    async def read(self, timeout: float = 2) -> discovery_pb2.DeltaDiscoveryResponse:
        response = await asyncio.wait_for(self.call.read(), timeout)
        assert response is not grpc.aio.EOF
        return response

    async def ack(self, response: discovery_pb2.DeltaDiscoveryResponse) -> None:
        await self.ask(response.type_url, response.nonce)

    async def close(self) -> None:
        await self.channel.close()


def clusters(*names: str, padding: int = 0) -> dict:
    built = [cluster(n) for n in names]
    for c in built:
        c.alt_stat_name = "x" * padding  # bulk, to fill flow-control windows
    return resources(clusters=built)


def run(tmp_path: Path, scenario) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        server = XdsServer(tmp_path / "xds.sock")
        await server.start()
        try:
            await scenario(server)
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_socket_path_too_long_is_refused(tmp_path: Path) -> None:
    with pytest.raises(XdsError, match="Unix socket limit"):
        XdsServer(tmp_path / ("s" * 120))


def test_threadsafe_variant_needs_a_started_server(tmp_path: Path) -> None:
    with pytest.raises(XdsError, match="not started"):
        XdsServer(tmp_path / "xds.sock").set_resources_threadsafe("n", {})


def test_push_ack_status_events_and_disconnect(tmp_path: Path) -> None:
    events: list[XdsEvent] = []

    async def scenario(server: XdsServer) -> None:
        server.on_event = events.append
        proxy = FakeProxy(server.socket_path, "node-a")
        await proxy.ask(type_urls.CLUSTER)
        await asyncio.sleep(0.1)
        assert server.connected() == ["node-a"]
        version = server.set_resources("node-a", clusters("one"))
        response = await proxy.read()
        assert response.type_url == type_urls.CLUSTER
        waiter = asyncio.create_task(server.wait_applied("node-a", version, 2))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # CDS sent, not ACKed; LDS not asked for
        await proxy.ack(response)
        await proxy.ask(type_urls.LISTENER)
        await proxy.ack(await proxy.read())
        assert await waiter
        status = server.status("node-a")
        assert status.types[type_urls.CLUSTER].acked_version == response.system_version_info
        assert status.snapshot_version == version
        await proxy.close()
        for _ in range(50):
            if not server.connected():
                break
            await asyncio.sleep(0.02)
        assert server.connected() == []

    run(tmp_path, scenario)
    kinds = [e.kind for e in events]
    assert kinds[0] == "connect" and kinds[-1] == "disconnect"
    assert kinds.count("ack") == 2 and kinds.count("push") == 2


def test_slow_proxy_does_not_hold_up_others(tmp_path: Path) -> None:
    async def scenario(server: XdsServer) -> None:
        slow = FakeProxy(server.socket_path, "slow")
        fast = FakeProxy(server.socket_path, "fast")
        await slow.ask(type_urls.CLUSTER)
        await fast.ask(type_urls.CLUSTER)
        await asyncio.sleep(0.1)
        # ~40 MB queued for a proxy that never reads: its writer blocks on flow control.
        for n in range(40):
            server.set_resources("slow", clusters(f"c{n}", padding=1_000_000))
        server.set_resources("fast", clusters("quick"))
        response = await fast.read(timeout=1)
        assert response.system_version_info == server.status("fast").types[type_urls.CLUSTER].sent_version
        await slow.close()
        await fast.close()

    run(tmp_path, scenario)


def test_threadsafe_publish_and_wait_from_another_thread(tmp_path: Path) -> None:
    async def scenario(server: XdsServer) -> None:
        proxy = FakeProxy(server.socket_path, "node-t")
        await proxy.ask(type_urls.CLUSTER)
        await proxy.ask(type_urls.LISTENER)
        outcome: list[bool] = []

        def supervisor() -> None:
            version = server.set_resources_threadsafe("node-t", clusters("from-thread"))
            outcome.append(server.wait_applied_threadsafe("node-t", version, 3))

        thread = threading.Thread(target=supervisor)
        thread.start()
        for _ in range(2):
            await proxy.ack(await proxy.read())
        await asyncio.to_thread(thread.join, 5)
        assert outcome == [True]
        await proxy.close()

    run(tmp_path, scenario)


def test_nack_makes_wait_applied_false_at_once(tmp_path: Path) -> None:
    async def scenario(server: XdsServer) -> None:
        proxy = FakeProxy(server.socket_path, "node-n")
        version = server.set_resources("node-n", clusters("bad"))
        await proxy.ask(type_urls.CLUSTER)
        response = await proxy.read()
        await proxy.ask(type_urls.CLUSTER, response.nonce, error="cluster 'bad' is bad")
        assert await server.wait_applied("node-n", version, 5) is False
        assert server.status("node-n").nack_message(type_urls.CLUSTER) == "cluster 'bad' is bad"
        assert server.status("node-n").sync_state() == (
            "NACK", "CDS rejected by Envoy: cluster 'bad' is bad")
        # Superseded or unknown versions are never "applied".
        assert await server.wait_applied("node-n", "not-a-version", 5) is False
        await proxy.close()

    run(tmp_path, scenario)


def test_sync_state_follows_the_stream(tmp_path: Path) -> None:
    """The state follows the nonce of what was last sent, so a rejected push shows as NACK,
    not SYNCED."""
    async def scenario(server: XdsServer) -> None:
        assert server.status("node-s").sync_state()[0] == "DISCONNECTED"
        proxy = FakeProxy(server.socket_path, "node-s")
        server.set_resources("node-s", clusters("good"))
        await proxy.ask(type_urls.CLUSTER)
        first = await proxy.read()
        assert server.status("node-s").sync_state() == ("STALE", "CDS sent, not yet confirmed")
        await proxy.ack(first)
        await asyncio.sleep(0.05)
        assert server.status("node-s").sync_state() == ("SYNCED", "")
        server.set_resources("node-s", clusters("good", "bad"))
        second = await proxy.read()
        await proxy.ask(type_urls.CLUSTER, second.nonce, error="cluster 'bad': no endpoints")
        await asyncio.sleep(0.05)
        assert server.status("node-s").sync_state() == (
            "NACK", "CDS rejected by Envoy: cluster 'bad': no endpoints")
        await proxy.close()

    run(tmp_path, scenario)


def test_remove_node_ends_its_stream(tmp_path: Path) -> None:
    async def scenario(server: XdsServer) -> None:
        proxy = FakeProxy(server.socket_path, "gone")
        server.set_resources("gone", clusters("x"))
        await proxy.ask(type_urls.CLUSTER)
        await proxy.read()
        server.remove_node("gone")
        assert await asyncio.wait_for(proxy.call.read(), 2) is grpc.aio.EOF
        assert server.status("gone").snapshot_version is None
        await proxy.close()

    run(tmp_path, scenario)


def test_first_request_without_node_is_refused(tmp_path: Path) -> None:
    async def scenario(server: XdsServer) -> None:
        channel = grpc.aio.insecure_channel(f"unix:{server.socket_path}")
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).DeltaAggregatedResources()
        await call.write(discovery_pb2.DeltaDiscoveryRequest(type_url=type_urls.CLUSTER))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await asyncio.wait_for(call.read(), 2)
        assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        await channel.close()

    run(tmp_path, scenario)


def test_a_node_channel_serves_its_own_node_only(tmp_path: Path) -> None:
    async def scenario(server: XdsServer) -> None:
        events: list[XdsEvent] = []
        server.on_event = events.append
        server.set_resources("sidecar~a", clusters("a"))
        server.set_resources("sidecar~b", clusters("b-secret"))
        channel = tmp_path / "a.sock"
        await server.open_channel("sidecar~a", channel)
        assert oct(channel.stat().st_mode & 0o777) == "0o600"
        own = FakeProxy(channel, "sidecar~a")
        await own.ask(type_urls.CLUSTER)
        assert (await own.read()).resources
        thief = FakeProxy(channel, "sidecar~b")
        await thief.ask(type_urls.CLUSTER)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await thief.read()
        assert error.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert any(e.kind == "refused" and e.node_id == "sidecar~b" for e in events)
        await own.close()
        await thief.close()
        await server.close_channel("sidecar~a")
        assert not channel.exists()

    run(tmp_path, scenario)


def test_delta_over_grpc_sends_only_what_changed(tmp_path: Path) -> None:
    """Subscribe, change one cluster, remove one, NACK, reconnect: each response carries
    only the resources that differ from what the proxy holds."""
    names = [f"c{n}" for n in range(20)]

    def config(*, slow: str = "", without: str = "") -> dict:
        built = [cluster(n, connect_timeout_ms=2500 if n == slow else 1000)
                 for n in names if n != without]
        return resources(clusters=built)

    def held(response: discovery_pb2.DeltaDiscoveryResponse) -> dict[str, str]:
        return {r.name: r.version for r in response.resources}

    async def scenario(server: XdsServer) -> None:
        server.set_resources("node-d", config())
        proxy = FakeProxy(server.socket_path, "node-d")
        await proxy.ask(type_urls.CLUSTER)
        first = await proxy.read()
        assert sorted(held(first)) == sorted(names)
        await proxy.ack(first)
        versions = held(first)

        server.set_resources("node-d", config(slow="c3"))
        one = await proxy.read()
        assert (list(held(one)), list(one.removed_resources)) == (["c3"], [])
        await proxy.ack(one)
        versions.update(held(one))

        server.set_resources("node-d", config(slow="c3", without="c9"))
        gone = await proxy.read()
        assert (list(gone.resources), list(gone.removed_resources)) == ([], ["c9"])
        await proxy.ack(gone)
        del versions["c9"]

        rejected = server.set_resources("node-d", config(slow="c4", without="c9"))
        bad = await proxy.read()
        assert list(held(bad)) == ["c3", "c4"]  # c3 back to its first content, c4 slower
        await proxy.ask(type_urls.CLUSTER, bad.nonce, error="c4 is bad")
        assert await server.wait_applied("node-d", rejected, 2) is False
        assert server.status("node-d").sync_state()[0] == "NACK"
        await proxy.close()

        # The proxy still runs `versions` (it rejected `bad`); it says so on reconnect
        # and gets c3 and c4 again, nothing else.
        again = FakeProxy(server.socket_path, "node-d")
        await again.ask(type_urls.CLUSTER, initial=versions)
        resent = await again.read()
        assert (sorted(held(resent)), list(resent.removed_resources)) == (["c3", "c4"], [])
        status = server.status("node-d").types[type_urls.CLUSTER]
        assert (status.held, status.sent_resources) == (19, 2)
        await again.close()

    run(tmp_path, scenario)


def test_the_state_of_the_world_rpc_is_not_served(tmp_path: Path) -> None:
    async def scenario(server: XdsServer) -> None:
        async with grpc.aio.insecure_channel(f"unix:{server.socket_path}") as channel:
            call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
            request = discovery_pb2.DiscoveryRequest(type_url=type_urls.CLUSTER)
            request.node.CopyFrom(base_pb2.Node(id="old"))
            with pytest.raises(grpc.aio.AioRpcError) as error:
                # The refusal may come before the request is written, or after.
                await call.write(request)
                await asyncio.wait_for(call.read(), 2)
            assert error.value.code() is grpc.StatusCode.UNIMPLEMENTED

    run(tmp_path, scenario)


def test_snapshots_built_off_the_loop_are_served_only_when_published_all_together(
        tmp_path: Path) -> None:
    async def scenario(server: XdsServer) -> None:
        proxies = [FakeProxy(server.socket_path, f"node-{n}") for n in range(2)]
        for proxy in proxies:
            await proxy.ask(type_urls.CLUSTER)
        await asyncio.sleep(0.1)
        built = await asyncio.to_thread(server.build, {
            "node-0": clusters("a", "shared"), "node-1": clusters("b", "shared")})
        # Built, not served: the proxies are told nothing until publish.
        await asyncio.sleep(0.1)
        for n in range(2):
            status = server.status(f"node-{n}")
            assert (status.snapshot_version, status.types[type_urls.CLUSTER].sent_nonce) == (
                None, None)
        versions = server.publish(built)
        for n, proxy in enumerate(proxies):
            response = await proxy.read()
            assert versions[f"node-{n}"] == server.status(f"node-{n}").snapshot_version
            assert sorted(r.name for r in response.resources) == sorted(["shared", "ab"[n]])
            await proxy.close()

    run(tmp_path, scenario)
