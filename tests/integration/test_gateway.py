"""The gateway in front of real backend processes on loopback: routing, pass-through, errors, hooks."""
from __future__ import annotations

import asyncio
import base64
import gzip
import json
import re
import socket
import subprocess
import sys
from typing import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from lab_helpers.gateway import Backend, Exchange, Gateway, Route, RouteTable, RouteTarget
from lab_helpers.paths import REPO_ROOT

pytestmark = pytest.mark.integration

# A backend "pod": echoes what it received as JSON, or streams, gzips, or sleeps on request.
BACKEND_SOURCE = r'''
import asyncio, base64, gzip, socket, sys
from aiohttp import web

NAME = sys.argv[1]
received = {"count": 0}

async def echo(request):
    received["count"] += 1
    body = await request.read()
    status = int(request.query.get("status", "200"))
    await asyncio.sleep(float(request.query.get("delay", "0")))
    return web.json_response(
        {"backend": NAME, "method": request.method, "path_qs": request.raw_path,
         "headers": [[k, v] for k, v in request.headers.items()], "body": base64.b64encode(body).decode()},
        status=status, headers={"X-Backend": NAME},
    )

async def stream(request):
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    for part in (b"one ", b"two ", b"three"):
        await response.write(part)
        await asyncio.sleep(0.01)
    await response.write_eof()
    return response

async def gzipped(request):
    return web.Response(body=gzip.compress(b"compressed payload"), headers={"Content-Encoding": "gzip"})

async def count(request):
    return web.json_response(received)

app = web.Application(client_max_size=64 * 1024 * 1024)
app.router.add_get("/stream", stream)
app.router.add_get("/gzip", gzipped)
app.router.add_get("/count", count)
app.router.add_route("*", "/{tail:.*}", echo)
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
web.run_app(app, sock=listener, access_log=None, print=None)
'''


@pytest.fixture(scope="module")
def backends():
    """Two backend processes, "one" and "two": {name: base URL}."""
    processes, urls = [], {}
    try:
        for name in ("one", "two"):
            process = subprocess.Popen([sys.executable, "-c", BACKEND_SOURCE, name], stdout=subprocess.PIPE)
            processes.append(process)
            port = process.stdout.readline().strip()
            assert port.isdigit(), f"backend {name} did not start"
            urls[name] = f"http://127.0.0.1:{int(port)}"
        yield urls
    finally:
        for process in processes:
            process.kill()
            process.wait()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def route(host: str, *urls: str, ready: bool = True, revision: str = "r1") -> Route:
    return Route(host, [RouteTarget("iris", "lab", revision, [Backend(url, ready) for url in urls], 100)])


def run_through_gateway(
    table: RouteTable, scenario: Callable[[aiohttp.ClientSession], Awaitable[None]], **gateway_options
) -> None:
    """Start a Gateway on a free loopback port, run `scenario` with a client of it, stop it.

    The client sends only the headers a test sets (no User-Agent, Accept-Encoding or default
    Content-Type) and leaves bodies compressed, so what arrives is what the gateway did.
    """

    async def main() -> None:
        gateway = Gateway(table, **gateway_options)
        port = await gateway.start()
        client = aiohttp.ClientSession(
            f"http://127.0.0.1:{port}", auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
        try:
            async with client:
                await scenario(client)
        finally:
            await gateway.stop()

    asyncio.run(main())


async def backend_count(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/count") as response:
        return (await response.json())["count"]


def test_routes_by_host_header_with_port_stripped(backends):
    table = RouteTable([route("one.example.com", backends["one"]), route("two.example.com", backends["two"])])

    async def scenario(client):
        for host, expected in [("one.example.com", "one"), ("TWO.example.com:8080", "two")]:
            async with client.get("/v2/health/ready", headers={"Host": host}) as response:
                assert response.status == 200
                assert (await response.json())["backend"] == expected

    run_through_gateway(table, scenario)


def test_unknown_host_is_404_json_and_own_host_serves_healthz(backends):
    table = RouteTable([route("one.example.com", backends["one"])])

    async def scenario(client):
        async with client.get("/v2/health/ready", headers={"Host": "nope.example.com"}) as response:
            assert response.status == 404
            assert await response.json() == {"error": "no route for host nope.example.com"}
        async with client.get("/healthz") as response:  # Host: 127.0.0.1:PORT, the gateway itself
            assert response.status == 200
            assert await response.json() == {"status": "ok", "routes": 1}

    run_through_gateway(table, scenario)


def test_method_path_query_headers_and_body_pass_through(backends):
    table = RouteTable([route("one.example.com", backends["one"])])
    payload = bytes(range(256)) * 4

    async def scenario(client):
        headers = {"Host": "one.example.com", "X-Caller": "notebook", "Proxy-Authorization": "secret"}
        path = URL("/v2/models/iris/infer?b=%2Fx&status=201", encoded=True)  # sent as is, %2F kept
        async with client.put(path, data=payload, headers=headers) as response:
            assert response.status == 201
            assert response.headers["X-Backend"] == "one"
            request_id = response.headers["x-request-id"]
            seen = await response.json()
        received = {name.lower(): value for name, value in seen["headers"]}
        assert (seen["method"], seen["path_qs"]) == ("PUT", "/v2/models/iris/infer?b=%2Fx&status=201")
        assert base64.b64decode(seen["body"]) == payload
        assert received["host"] == "one.example.com"
        assert received["x-caller"] == "notebook"
        assert received["x-request-id"] == request_id and len(request_id) == 36
        assert received["x-forwarded-for"] == "127.0.0.1"
        assert received["content-length"] == str(len(payload))
        # hop-by-hop headers stay behind; the gateway adds no client defaults of its own
        assert not {"proxy-authorization", "user-agent", "accept-encoding", "content-type"} & received.keys()

        async with client.get("/", headers={"Host": "one.example.com", "x-request-id": "caller-42"}) as response:
            assert response.headers["x-request-id"] == "caller-42"
            received = {name.lower(): value for name, value in (await response.json())["headers"]}
            assert received["x-request-id"] == "caller-42"

    run_through_gateway(table, scenario)


def test_compressed_and_streamed_responses_pass_through_unchanged(backends):
    table = RouteTable([route("one.example.com", backends["one"])])
    exchanges: list[Exchange] = []

    async def scenario(client):
        async with client.get("/gzip", headers={"Host": "one.example.com"}) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(await response.read()) == b"compressed payload"
        async with client.get("/stream", headers={"Host": "one.example.com"}) as response:
            assert response.headers["Transfer-Encoding"] == "chunked"
            assert await response.read() == b"one two three"

    run_through_gateway(table, scenario, observers=[exchanges.append])
    buffered, streamed = exchanges
    assert gzip.decompress(buffered.response_body) == b"compressed payload"
    assert streamed.response_body is None and streamed.status == 200


def test_backend_down_is_503_with_retry_after(backends):
    table = RouteTable([
        route("down.example.com", closed_port_url()),
        route("unready.example.com", backends["one"], ready=False),
    ])

    async def scenario(client):
        async with client.post("/v2/models/iris/infer", data=b"{}", headers={"Host": "down.example.com"}) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            assert "unreachable" in (await response.json())["error"]
        async with client.get("/", headers={"Host": "unready.example.com"}) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            assert (await response.json())["error"] == (
                "no ready backend for lab/iris revision r1 (host unready.example.com)"
            )

    run_through_gateway(table, scenario)


def test_body_over_the_cap_is_413_without_contacting_the_backend(backends):
    table = RouteTable([route("one.example.com", backends["one"])])

    async def chunked_body():
        for _ in range(4):
            yield b"x" * 1000

    async def scenario(client):
        before = await backend_count(backends["one"])
        headers = {"Host": "one.example.com"}
        async with client.post("/v2/models/iris/infer", data=b"x" * 4000, headers=headers) as response:
            assert response.status == 413
            assert await response.json() == {"error": "request body larger than 2048 bytes"}
        async with client.post("/v2/models/iris/infer", data=chunked_body(), headers=headers) as response:
            assert response.status == 413
        async with client.post("/v2/models/iris/infer", data=b"x" * 2048, headers=headers) as response:
            assert response.status == 200  # at the cap is fine
        assert await backend_count(backends["one"]) == before + 1

    run_through_gateway(table, scenario, max_body_bytes=2048)


def test_requests_beyond_the_in_flight_bound_get_503(backends):
    table = RouteTable([route("one.example.com", backends["one"])])

    async def scenario(client):
        async def call() -> tuple[int, str | None]:
            async with client.get("/?delay=0.5", headers={"Host": "one.example.com"}) as response:
                await response.read()
                return response.status, response.headers.get("Retry-After")

        results = await asyncio.gather(*(call() for _ in range(4)))
        assert sorted(results, key=lambda result: result[0]) == [(200, None)] * 2 + [(503, "1")] * 2

    run_through_gateway(table, scenario, max_in_flight_per_route=2)


def test_filters_can_answer_or_hold_and_observers_see_every_routed_request(backends):
    """A deny filter (the policy hook) and a hold that waits for a backend (the scale-from-zero hook)."""
    table = RouteTable([route("iris.example.com", backends["one"], ready=False)])
    calls: list[str] = []
    exchanges: list[Exchange] = []

    async def deny_intruder(request: web.BaseRequest, target: RouteTarget) -> web.StreamResponse | None:
        calls.append(f"policy {target.service}")
        if request.headers.get("X-Caller") == "intruder":
            return web.json_response({"error": "denied"}, status=403)
        return None

    async def hold_until_ready(request: web.BaseRequest, target: RouteTarget) -> None:
        calls.append(f"hold {target.revision}")
        # what the control plane does when a scaled-to-zero revision becomes ready
        table.replace([route("iris.example.com", backends["one"])])

    def broken_observer(exchange: Exchange) -> None:
        raise RuntimeError("observer bug")

    async def scenario(client):
        headers = {"Host": "iris.example.com", "X-Caller": "intruder"}
        async with client.post("/v2/models/iris/infer", data=b'{"inputs": []}', headers=headers) as response:
            assert response.status == 403
        assert calls == ["policy iris"]
        headers["X-Caller"] = "notebook"
        async with client.post("/v2/models/iris/infer", data=b'{"inputs": []}', headers=headers) as response:
            assert response.status == 200
            await response.read()
        assert calls == ["policy iris", "policy iris", "hold r1"]
        async with client.get("/", headers={"Host": "unknown.example.com"}) as response:
            assert response.status == 404

    run_through_gateway(
        table, scenario, filters=[deny_intruder, hold_until_ready], observers=[broken_observer, exchanges.append]
    )
    denied, served = exchanges  # the unknown host reached no route, so no observer call
    assert (denied.status, denied.backend, denied.request_body) == (403, None, b'{"inputs": []}')
    assert (served.status, served.backend.url, served.target.revision) == (200, backends["one"], "r1")
    assert served.request_body == b'{"inputs": []}'
    assert json.loads(served.response_body)["backend"] == "one"
    assert served.duration_s > 0 and served.host == "iris.example.com" and served.method == "POST"
    assert served.request_headers["X-Caller"] == "notebook"


def test_slow_backend_is_504_and_a_failing_filter_is_500(backends):
    table = RouteTable([route("one.example.com", backends["one"]), route("guarded.example.com", backends["two"])])

    async def broken_policy(request: web.BaseRequest, target: RouteTarget) -> None:
        if request.host.startswith("guarded"):
            raise KeyError("identity")

    async def scenario(client):
        async with client.get("/?delay=2", headers={"Host": "one.example.com"}) as response:
            assert response.status == 504
            assert "did not answer in time" in (await response.json())["error"]
        async with client.get("/", headers={"Host": "guarded.example.com"}) as response:
            assert response.status == 500
            assert await response.json() == {"error": "gateway filter broken_policy failed"}

    run_through_gateway(table, scenario, upstream_timeout_s=0.3, filters=[broken_policy])


def test_benchmark_prints_both_paths_and_the_ratio():
    completed = subprocess.run(
        [sys.executable, "-m", "lab_helpers.bench", "gateway", "--requests", "20", "--concurrency", "2",
         "--seconds", "5", "--rounds", "1"],
        capture_output=True, text=True, timeout=180, cwd=REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    rows = dict(re.findall(r"^(direct|gateway) +(\d+ +\d+ +[\d.]+ +[\d.]+ +\d+) ", completed.stdout, re.MULTILINE))
    for path in ("direct", "gateway"):
        requests, errors, p50_ms, p99_ms, per_second = rows[path].split()
        assert (int(requests), int(errors)) == (20, 0)
        assert 0 < float(p50_ms) <= float(p99_ms) and int(per_second) > 0
    assert re.search(r"gateway/direct throughput \d+\.\d\d .*added p50 [+-]\d+\.\d\d ms", completed.stdout)


def test_callers_bind_distinct_loopback_addresses_and_the_gateway_sees_each(backends):
    """The seam network policy builds on: a caller's identity is the 127.0.0.x it connects from."""
    from lab_helpers.inference import post

    exchanges: list[Exchange] = []
    seen: dict[str, str] = {}

    async def main() -> None:
        gateway = Gateway(RouteTable([route("one.example.com", backends["one"])]), observers=[exchanges.append])
        port = await gateway.start()
        try:
            for address in ("127.0.0.7", "127.0.0.8"):
                response = await asyncio.to_thread(post, f"http://127.0.0.1:{port}", "one.example.com", "/who",
                                                   b"{}", 5.0, address)
                seen[address] = dict(response.json()["headers"])["X-Forwarded-For"]
        finally:
            await gateway.stop()

    asyncio.run(main())
    assert [e.remote for e in exchanges] == ["127.0.0.7", "127.0.0.8"]
    assert seen == {"127.0.0.7": "127.0.0.7", "127.0.0.8": "127.0.0.8"}


def test_a_caller_address_off_loopback_is_refused_with_the_reason():
    from lab_helpers.errors import LabError
    from lab_helpers.inference import caller_transport

    with pytest.raises(LabError, match="not a loopback address"):
        caller_transport("10.0.0.7")
