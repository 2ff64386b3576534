"""What a broken or hostile client can do to the gateway: empty and stalled bodies, stalled heads, bad HTTP,
bursts over the in-flight bound, and a bounded soak of all of it (memory counted and printed)."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import psutil
import pytest

from lab_helpers.gateway import Gateway, RouteTable
from tests.integration.test_gateway import backends, route, run_through_gateway  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
HOST = "one.example.com"


async def raw_exchange(port: int, data: bytes, read_timeout: float = 30.0) -> bytes:
    """Send raw bytes, then read until the gateway closes the connection (the safety timeout fails the test)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), read_timeout)
    finally:
        writer.close()


def status_and_json(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), head
    return status, json.loads(body)


async def stalled_upload(port: int, host: str = HOST) -> asyncio.StreamWriter:
    """A client that sends its head and 3 of 100 body bytes, then nothing (a slow-loris body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST /v2/models/iris/infer HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n{{\"i".encode())
    await writer.drain()
    writer.reader = reader  # type: ignore[attr-defined]
    return writer


def gateway_port(client: aiohttp.ClientSession) -> int:
    return client._base_url.port  # type: ignore[union-attr]


def with_gateway(table: RouteTable, scenario, **options) -> None:
    """Like run_through_gateway, with the Gateway object handed to the scenario too."""

    async def main() -> None:
        gateway = Gateway(table, **options)
        port = await gateway.start()
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
                await scenario(client, gateway)
        finally:
            await gateway.stop()

    asyncio.run(main())


async def until(condition, what: str, limit_s: float = 30.0) -> None:
    """Wait for a state the test needs before it acts (a safety limit, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


def test_an_empty_body_with_content_length_0_is_forwarded_not_a_500(backends):
    table = RouteTable([route(HOST, backends["one"])])

    async def scenario(client):
        headers = {"Host": HOST, "Content-Length": "0"}
        async with client.post("/v2/models/iris/infer", data=b"", headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["body"] == ""

    run_through_gateway(table, scenario)


@pytest.mark.parametrize("request_bytes, says", [
    (b"GET /v2/health/ready HTTP/1.1\r\n\r\n", "Host"),
    (b"GET /v2/health/ready HTTP/1.1\r\nHost: one.example.com\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
     "longer than 8190 bytes"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: one.example.com\r\n\r\n", "longer than 8190 bytes"),
    (b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: one.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\n{}\r\n0\r\n\r\n", "chunk size"),
], ids=["missing-host", "oversized-header", "oversized-url", "bad-chunked-body"])
def test_http_layer_rejections_are_json_errors_without_the_callers_bytes(backends, request_bytes, says):
    table = RouteTable([route(HOST, backends["one"])])

    async def scenario(client):
        status, body = status_and_json(await raw_exchange(gateway_port(client), request_bytes))
        assert status == 400
        assert list(body) == ["error"] and says in body["error"]
        assert "aaaa" not in body["error"] and "zz" not in body["error"]

    run_through_gateway(table, scenario)


def test_a_stalled_body_gets_408_and_does_not_count_as_in_flight(backends):
    """Stalled uploads beyond the in-flight bound: a valid caller still gets through; each stall ends in 408."""
    table = RouteTable([route(HOST, backends["one"])])
    seen: dict[str, object] = {}

    async def scenario(client, gateway):
        stalled = [await stalled_upload(gateway.port) for _ in range(6)]
        await until(lambda: gateway.reading == 6, "the gateway took in all 6 request heads")
        async with client.post("/v2/models/iris/infer", data=b"{}", headers={"Host": HOST}) as response:
            seen["valid"] = response.status
        answers = await asyncio.gather(*(asyncio.wait_for(w.reader.read(), 30) for w in stalled))
        for writer in stalled:
            writer.close()
        seen["stalled"] = [status_and_json(answer) for answer in answers]

    with_gateway(table, scenario, max_in_flight_per_route=2, body_timeout_s=1.0)
    assert seen["valid"] == 200
    assert seen["stalled"] == [(408, {"error": "request body not received within 1 s"})] * 6


def test_a_client_that_hangs_up_mid_body_is_not_a_gateway_error(backends, caplog):
    table = RouteTable([route(HOST, backends["one"])])

    async def scenario(client, gateway):
        writer = await stalled_upload(gateway.port)
        await until(lambda: gateway.reading == 1, "the gateway took in the request head")
        writer.close()
        await until(lambda: gateway.reading == 0, "the gateway let go of the broken-off request")
        async with client.post("/v2/models/iris/infer", data=b"{}", headers={"Host": HOST}) as response:
            assert response.status == 200

    with caplog.at_level("ERROR"):
        with_gateway(table, scenario)
    assert [record.getMessage() for record in caplog.records if record.levelname == "ERROR"] == []


def test_a_stalled_request_head_is_cut_off(backends):
    table = RouteTable([route(HOST, backends["one"])])
    closed: list[bytes] = []

    async def scenario(client):
        # Half a request head, then silence: the gateway closes the connection without an answer.
        closed.append(await raw_exchange(gateway_port(client), b"GET /v2/health/ready HTTP/1.1\r\nHost: one.exa"))

    run_through_gateway(table, scenario, header_timeout_s=0.5)
    assert closed == [b""]


def test_hundreds_of_stalled_connections_do_not_lock_out_a_valid_caller(backends):
    """300 stalled uploads against the default in-flight bound of 256 per route."""
    table = RouteTable([route(HOST, backends["one"])])
    seen: dict[str, object] = {}

    async def scenario(client, gateway):
        stalled = await asyncio.gather(*(stalled_upload(gateway.port) for _ in range(300)))
        await until(lambda: gateway.reading == 300, "the gateway took in all 300 request heads")
        async with client.post("/v2/models/iris/infer", data=b"{}", headers={"Host": HOST}) as response:
            seen["valid"] = response.status
        for writer in stalled:
            writer.close()

    with_gateway(table, scenario)
    assert seen["valid"] == 200


def test_a_burst_over_the_in_flight_bound_is_shed_with_503_before_the_backend_answers(backends):
    """200 concurrent calls to a backend that takes 3 s, bound 4: 4 served, 196 told to retry, and every
    refusal arrives before the first served answer (shedding does not wait for the backend)."""
    table = RouteTable([route(HOST, backends["one"])])
    order: list[tuple[int, str | None]] = []

    async def scenario(client):
        async def call() -> None:
            async with client.get("/?delay=3", headers={"Host": HOST}) as response:
                await response.read()
                order.append((response.status, response.headers.get("Retry-After")))

        await asyncio.gather(*(call() for _ in range(200)))

    run_through_gateway(table, scenario, max_in_flight_per_route=4)
    assert sorted(order) == [(200, None)] * 4 + [(503, "1")] * 196
    first_served = order.index((200, None))
    assert all(status == 503 for status, _ in order[:first_served]) and first_served == 196


# A gateway of its own process, so its memory can be measured from outside.
GATEWAY_SOURCE = r'''
import asyncio, sys
from lab_helpers.gateway import Backend, Gateway, Route, RouteTable, RouteTarget

async def main():
    table = RouteTable([Route("one.example.com", [RouteTarget("iris", "lab", "r1", [Backend(sys.argv[1])])])])
    gateway = Gateway(table, max_in_flight_per_route=8, body_timeout_s=0.5, max_body_bytes=1024)
    print(await gateway.start(), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def test_gateway_memory_stays_bounded_over_a_soak_of_bad_and_good_traffic(backends):
    """Rounds of valid calls, bursts over the bound, oversized and stalled bodies; RSS printed per round."""
    process = subprocess.Popen([sys.executable, "-c", GATEWAY_SOURCE, backends["one"]], stdout=subprocess.PIPE)
    try:
        port = int(process.stdout.readline())
        gateway = psutil.Process(process.pid)

        async def one_round(client: aiohttp.ClientSession) -> dict[int, int]:
            statuses: dict[int, int] = {}

            async def call(method: str, path: str, body: bytes | None = None) -> None:
                async with client.request(method, path, data=body, headers={"Host": HOST}) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1

            stalled = [await stalled_upload(port) for _ in range(20)]
            await asyncio.gather(*(call("POST", "/v2/models/iris/infer", b"{}") for _ in range(150)),
                                 *(call("POST", "/v2/models/iris/infer", b"x" * 4000) for _ in range(20)),
                                 *(call("GET", "/?delay=0.2") for _ in range(50)))
            for writer in stalled:
                await writer.reader.read()
                writer.close()
            return statuses

        async def soak() -> list[int]:
            rss = []
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
                for number in range(5):
                    statuses = await one_round(client)
                    rss.append(gateway.memory_info().rss)
                    print(f"soak round {number}: gateway RSS {rss[-1] / 2**20:.1f} MiB, answers {sorted(statuses.items())}")
                    assert statuses.get(500, 0) == 0 and statuses[413] == 20 and statuses.get(200, 0) > 0
            return rss

        rss = asyncio.run(soak())
    finally:
        process.kill()
        process.wait()
    growth = rss[-1] - rss[1]  # round 0 warms pools and caches
    print(f"gateway RSS growth over rounds 1-4: {growth / 2**20:+.1f} MiB")
    assert growth < 16 * 2**20
