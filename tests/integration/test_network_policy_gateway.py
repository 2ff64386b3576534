"""Policy at the gateway's edge on real sockets: drop vs 403, what a drop costs, and spoofing attempts.

The gateway here has the enforcer the control plane gives it, with a policy state built in the test:
callers are told apart by the loopback address they connect from (127.0.0.x), nothing else.
"""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from lab_helpers.gateway import Gateway, RouteTable
from lab_helpers.policy.enforcement import ACCESS_DENIED, PolicyEnforcer, PolicyState
from lab_helpers.policy.flows import FlowLog
from lab_helpers.policy.identity import Identity
from lab_helpers.policy.rules import Destination, compile_policy
from tests.integration.test_gateway import backends, route  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
SERVICE_HOST = "iris.lab.svc.cluster.local"
ALLOWED, DENIED, UNKNOWN = "127.0.0.2", "127.0.0.3", "127.0.0.9"
POLICY = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "p", "namespace": "lab"},
          "spec": {"endpointSelector": {"matchLabels": {"app": "iris"}}, "ingress": [{
              "fromEndpoints": [{"matchLabels": {"inference-client": "iris"}}],
              "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}],
                           "rules": {"http": [{"method": "POST", "path": "/v2/models/iris/infer"}]}}]}]}}
SPOOFS = {"X-Forwarded-For": ALLOWED, "X-Real-IP": ALLOWED, "Forwarded": f"for={ALLOWED}",
          "X-Cilium-Identity": "lab/inference-client=iris", "X-Envoy-Peer-Metadata-Id": "inference-client",
          "X-Forwarded-Client-Cert": "By=spiffe://cluster.local/ns/lab/sa/scorer", "inference-client": "iris"}


def policed_gateway(table: RouteTable, **options) -> tuple[Gateway, FlowLog]:
    flows = FlowLog()
    enforcer = PolicyEnforcer(flows, is_intercepted=lambda host: False)
    destination = Destination("lab", "iris", {"app": "iris"}, 8080, {})
    enforcer.install(PolicyState({("lab", "iris"): (destination, tuple(compile_policy(POLICY)))},
                                 {ALLOWED: Identity("lab", {"inference-client": "iris"}),
                                  DENIED: Identity("lab", {"app": "notebook"})}))
    return Gateway(table, admit=enforcer.admit, **options), flows


def run(table: RouteTable, scenario, **options) -> FlowLog:
    async def main() -> None:
        gateway, flows = policed_gateway(table, **options)
        await gateway.start()
        try:
            await scenario(gateway)
        finally:
            await gateway.stop()
        main.flows = flows  # type: ignore[attr-defined]

    asyncio.run(main())
    return main.flows  # type: ignore[attr-defined]


async def request_from(gateway: Gateway, address: str, path: str = "/v2/models/iris/infer", method: str = "POST",
                       headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, str] | None:
    """(status, body) as a caller at `address` sees it, or None when nothing came back within `timeout`."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:
        try:
            async with client.request(method, f"http://127.0.0.1:{gateway.port}{path}", data=b"{}",
                                      headers={"Host": SERVICE_HOST, **(headers or {})},
                                      timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                return response.status, await response.text()
        except TimeoutError:
            return None


def test_allowed_passes_l7_denial_is_403_l3_denial_gets_no_answer(backends):
    async def scenario(gateway: Gateway) -> None:
        assert (await request_from(gateway, ALLOWED))[0] == 200
        assert await request_from(gateway, ALLOWED, "/v2/repository/models/iris/unload") == (403, ACCESS_DENIED)
        assert await request_from(gateway, DENIED, timeout=0.5) is None
        assert await request_from(gateway, UNKNOWN, timeout=0.5) is None  # an address no endpoint has: world

    flows = run(RouteTable([route(SERVICE_HOST, backends["one"])]), scenario)
    assert [(f.verdict, f.layer, f.source, f.source_address) for f in flows.recent()] == [
        ("FORWARDED", "L7", "lab/inference-client=iris", ALLOWED),
        ("DROPPED", "L7", "lab/inference-client=iris", ALLOWED),
        ("DROPPED", "L3_L4", "lab/app=notebook", DENIED),
        ("DROPPED", "L3_L4", "reserved:world", UNKNOWN)]


def test_a_dropped_connection_holds_no_in_flight_slot_and_is_closed_after_the_bound(backends):
    async def scenario(gateway: Gateway) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port, local_addr=(DENIED, 0))
        writer.write(f"POST /v2/models/iris/infer HTTP/1.1\r\nHost: {SERVICE_HOST}\r\nContent-Length: 2\r\n\r\n{{}}"
                     .encode())
        await writer.drain()
        await asyncio.sleep(0.2)
        assert gateway.dropped == 1 and gateway.in_flight(SERVICE_HOST) == 0
        # The route's only in-flight slot is free for an allowed caller while the dropped one waits.
        assert (await request_from(gateway, ALLOWED))[0] == 200
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the gateway, never a byte of answer
        assert gateway.dropped == 0
        writer.close()

    run(RouteTable([route(SERVICE_HOST, backends["one"])]), scenario, max_in_flight_per_route=1, drop_linger_s=1.0)


def test_beyond_max_dropped_a_dropped_connection_is_closed_at_once(backends):
    async def scenario(gateway: Gateway) -> None:
        held = asyncio.create_task(request_from(gateway, DENIED, timeout=3))
        await asyncio.sleep(0.3)
        assert gateway.dropped == 1
        started = asyncio.get_running_loop().time()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await request_from(gateway, DENIED, timeout=3)
        assert asyncio.get_running_loop().time() - started < 1.0
        assert await held is None

    run(RouteTable([route(SERVICE_HOST, backends["one"])]), scenario, max_dropped=1, drop_linger_s=30)


@pytest.mark.parametrize("host", [SERVICE_HOST.upper(), f"{SERVICE_HOST}:80", f"{SERVICE_HOST}:8080"])
def test_forged_headers_and_host_spellings_never_grant_access(backends, host):
    async def scenario(gateway: Gateway) -> None:
        assert await request_from(gateway, DENIED, headers={**SPOOFS, "Host": host}, timeout=0.5) is None
        # The same forgeries from the allowed caller neither help nor hurt: the address decides.
        assert (await request_from(gateway, ALLOWED, headers={**SPOOFS, "Host": host}))[0] == 200

    flows = run(RouteTable([route(SERVICE_HOST, backends["one"])]), scenario)
    assert [f.verdict for f in flows.recent()] == ["DROPPED", "FORWARDED"]


def test_the_ingress_host_is_checked_as_the_ingress_gateway_not_as_the_caller(backends):
    """Through the ingress the predictor sees the ingress gateway's identity (a separate hop, as on a cluster)."""
    async def scenario(gateway: Gateway) -> None:
        assert await request_from(gateway, DENIED, headers={"Host": "iris-lab.example.com"}, timeout=0.5) is None

    table = RouteTable([route(SERVICE_HOST, backends["one"]), route("iris-lab.example.com", backends["one"])])
    flows = run(table, scenario)
    assert [(f.source, f.source_address) for f in flows.recent()] == [
        ("istio-system/app=istio-ingressgateway,istio=ingressgateway", DENIED)]


def test_the_through_gateway_benchmark_proxies_with_and_without_the_check():
    from lab_helpers.bench.policy import through_gateway

    ((without, with_check),) = through_gateway(pairs=1, requests=80, concurrency=8)
    assert without > 0 and with_check > 0  # it raises if any request was not answered 200
