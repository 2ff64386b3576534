"""The local target's gateway: one aiohttp process that routes by Host like the KServe ingress.

Per request: Host -> route -> revision (by weight) -> admission (network policy: pass, 403 or
drop) -> body (read whole, under a deadline) -> in-flight bound -> filters (scale-from-zero hold)
-> ready backend -> forward over a pooled keep-alive connection -> answer -> observers (inference
log, request metrics). Overload and bad input are answered here with JSON errors and Retry-After,
so neither a slow backend nor a huge body costs unbounded memory.

A slow client cannot lock a service out: its request head must arrive within `header_timeout_s`
(`edge.EdgeServer`) and its body within `body_timeout_s` (else 408, as Envoy's ``request_timeout``
answers). Requests still sending their body are counted apart (`reading`, bounded by
`max_reading`), so the per-route in-flight bound counts only work the backends are doing: stalled
uploads fill neither it nor memory. A request the admission hook drops is not answered at all and
counts in neither bound: it waits, unanswered, in its own bounded set (`max_dropped`) until the
caller gives up or `drop_linger_s` passes.

It runs inside the caller's event loop (the control-plane daemon); run that loop on uvloop.
"""
from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .edge import DROP, Dropped, EdgeServer, linger_unanswered
from .routes import Backend, NoReadyBackend, RouteTable, RouteTarget, UnknownHost, normalize_host

log = logging.getLogger(__name__)

MiB = 1024 * 1024

# Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded; the
# lengths are recomputed by whichever side writes the body.
_HOP_BY_HOP = frozenset(
    name.lower()
    for name in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
        "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
    )
)
_GATEWAY_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})

# Request ids need uniqueness, not secrecy: a seeded PRNG instead of a getrandom() call per request.
_random_bits = random.Random().getrandbits
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def _new_request_id() -> str:
    """A random version-4 UUID string, the form Envoy puts in x-request-id."""
    digits = f"{(_random_bits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One answered request as observers see it, after the response went out.

    `backend` is None when the gateway answered itself (a filter, no ready backend, overload, too
    large, backend unreachable); `response_body` is None when the response was streamed through
    instead of buffered (no Content-Length, or larger than the body cap).
    """

    request_id: str
    host: str
    method: str
    path_qs: str
    remote: str | None
    request_headers: CIMultiDictProxy[str]
    request_body: bytes
    target: RouteTarget
    backend: Backend | None
    status: int
    duration_s: float
    response_body: bytes | None


Filter = Callable[[web.BaseRequest, RouteTarget], Awaitable[web.StreamResponse | None]]
"""Runs before forwarding; may wait (hold), return a response to answer instead (e.g. 403), or None."""

Observer = Callable[[Exchange], None]
"""Called after every request that reached a route; must not block (hand work to a queue)."""

Admission = Callable[[web.BaseRequest, RouteTarget], web.StreamResponse | Dropped | None]
"""Runs on the request head, before anything else: None to go on, a response to answer (e.g. 403), or DROP."""

OwnHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
"""Answers a path on the gateway's own host (127.0.0.1/localhost), e.g. its /metrics."""


def origin_form(target: str) -> str:
    """The path and query of a request target. A caller that uses the gateway as its HTTP proxy (a local pod
    reaching a Service by its cluster name) sends the absolute form, ``http://host/path?q``
    (RFC 9112 section 3.2.2); the backend gets the origin form, ``/path?q``."""
    if target.startswith("/"):
        return target
    parts = urlsplit(target)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """A mutable copy without the hop-by-hop headers."""
    copy = headers.copy()
    for name in _HOP_BY_HOP:
        if name in copy:
            del copy[name]
    return copy


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@dataclass(slots=True)
class _Call:
    """One request on its way through the gateway."""

    request: web.BaseRequest
    started: float
    host: str
    target: RouteTarget
    request_id: str
    body: bytes = b""

    def error(self, status: int, message: str, *, retry_after: int | None = None) -> web.Response:
        response = _error(status, message)
        response.headers["x-request-id"] = self.request_id
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    def describe(self, backend: Backend) -> str:
        target = self.target
        return f"backend {backend.url} of {target.namespace}/{target.service} revision {target.revision}"


class Gateway:
    """Host-routing reverse proxy over a RouteTable that the control plane replaces at will."""

    def __init__(
        self,
        table: RouteTable,
        *,
        filters: list[Filter] | None = None,
        admit: Admission | None = None,
        observers: list[Observer] | None = None,
        own_paths: dict[str, OwnHandler] | None = None,
        max_body_bytes: int = 10 * MiB,
        max_in_flight_per_route: int = 256,
        max_reading: int = 1024,
        header_timeout_s: float = 10.0,
        body_timeout_s: float = 30.0,
        drop_linger_s: float = 60.0,
        max_dropped: int = 1024,
        connect_timeout_s: float = 5.0,
        upstream_timeout_s: float = 300.0,
        connection_limit: int = 1024,
    ):
        self.table = table
        self.filters: list[Filter] = list(filters or [])
        self.admit = admit
        self.observers: list[Observer] = list(observers or [])
        # Paths served on the gateway's own host (e.g. /metrics), besides /healthz.
        self.own_paths: dict[str, OwnHandler] = dict(own_paths or {})
        self.max_body_bytes = max_body_bytes
        self.max_in_flight_per_route = max_in_flight_per_route
        self.max_reading = max_reading
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.drop_linger_s = drop_linger_s
        self.max_dropped = max_dropped
        self.dropped = 0  # dropped requests whose connection is still held open, unanswered
        self._timeout = aiohttp.ClientTimeout(total=upstream_timeout_s, sock_connect=connect_timeout_s)
        self._connection_limit = connection_limit
        self._in_flight: dict[str, int] = {}
        self.reading = 0  # requests whose body is still arriving, over all routes
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self.port: int | None = None

    def in_flight(self, host: str) -> int:
        """Requests for `host` inside the gateway now (the HTTP add-on interceptor's concurrency)."""
        return self._in_flight.get(host, 0)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (port 0 = a free one) and return the port."""
        if self._runner is not None:
            raise RuntimeError(f"Gateway already listening on port {self.port}")
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
        except OSError as exc:
            listener.close()
            raise OSError(exc.errno, f"gateway cannot listen on {host}:{port}: {exc.strerror}") from exc
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connection_limit, keepalive_timeout=15),
            timeout=self._timeout,
            auto_decompress=False,  # bodies pass through byte for byte, Content-Encoding intact
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        server = EdgeServer(self._handle, header_timeout_s=self.header_timeout_s, access_log=None,
                            auto_decompress=False)
        self._runner = web.ServerRunner(server)
        await self._runner.setup()
        await web.SockSite(self._runner, listener).start()
        self.port = listener.getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening, finish in-flight requests, close pooled backend connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.port = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        host = normalize_host(request.host)
        if host in _GATEWAY_HOSTS:
            if request.path == "/healthz":
                return web.json_response({"status": "ok", "routes": len(self.table.routes())})
            if request.path in self.own_paths:
                return await self.own_paths[request.path](request)
            return _error(404, f"no route for host {host}")
        try:
            target = self.table.pick_target(host)
        except UnknownHost as exc:
            return _error(404, str(exc))
        call = _Call(request, started, host, target, request.headers.get("x-request-id") or _new_request_id())
        if self.admit is not None:
            admitted = self.admit(request, target)
            if admitted is DROP:
                return await self._drop(request)
            if admitted is not None:
                return await self._finish(call, admitted)
        if self.reading >= self.max_reading:
            message = f"{self.reading} requests are still sending their body (limit {self.max_reading})"
            return await self._finish(call, call.error(503, message, retry_after=1))
        self.reading += 1
        try:
            body = await self._read_body(request)
        except TimeoutError:
            timed_out = await self._finish(
                call, call.error(408, f"request body not received within {self.body_timeout_s:g} s"))
            request.protocol.force_close()  # no lingering for the rest of a body that has stopped coming
            return timed_out
        except (asyncio.IncompleteReadError, web.RequestPayloadError) as exc:
            broken = call.error(400, f"request body broken off or malformed: {exc}")
            broken.force_close()
            return await self._finish(call, broken)
        except ConnectionResetError:  # the client hung up mid-body: nobody to answer, nothing to log
            return call.error(400, "the client closed the connection before its body arrived")
        finally:
            self.reading -= 1
        if body is None:
            too_large = call.error(413, f"request body larger than {self.max_body_bytes} bytes")
            too_large.force_close()  # the rest of that body is not read: the connection cannot carry another request
            return await self._finish(call, too_large)
        call.body = body
        in_flight = self._in_flight.get(host, 0)
        if in_flight >= self.max_in_flight_per_route:
            limit = self.max_in_flight_per_route
            message = f"host {host} has {in_flight} requests in flight (limit {limit})"
            return await self._finish(call, call.error(503, message, retry_after=1))
        self._in_flight[host] = in_flight + 1
        try:
            return await self._route(call)
        finally:
            self._in_flight[host] -= 1

    async def _drop(self, request: web.BaseRequest) -> web.StreamResponse:
        """No answer: held open (beyond `max_dropped` at once, closed at once), counted in no other bound."""
        if self.dropped >= self.max_dropped:
            return await linger_unanswered(request, 0)
        self.dropped += 1
        try:
            return await linger_unanswered(request, self.drop_linger_s)
        finally:
            self.dropped -= 1

    async def _route(self, call: _Call) -> web.StreamResponse:
        for run_filter in self.filters:
            try:
                response = await run_filter(call.request, call.target)
            except Exception:
                log.exception("gateway filter %r failed for request %s", run_filter, call.request_id)
                name = getattr(run_filter, "__name__", repr(run_filter))
                return await self._finish(call, call.error(500, f"gateway filter {name} failed"))
            if response is not None:
                return await self._finish(call, response)
        try:
            backend = self.table.pick_backend(call.host, call.target)
        except (NoReadyBackend, UnknownHost) as exc:
            return await self._finish(call, call.error(503, str(exc), retry_after=1))
        return await self._forward(call, backend)

    async def _read_body(self, request: web.BaseRequest) -> bytes | None:
        """The whole request body, or None when it is over the cap (nothing is sent upstream then).

        Raises TimeoutError when it has not all arrived within `body_timeout_s`.
        """
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            return None
        if length == 0 or (length is None and not request.body_exists):  # readexactly(0) would raise
            return b""
        if length is not None and request.content.total_bytes >= length:  # it came with the head: no timer
            return await request.content.readexactly(length)
        async with asyncio.timeout(self.body_timeout_s):
            if length is not None:
                return await request.content.readexactly(length)
            chunks, size = [], 0
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > self.max_body_bytes:
                    return None
                chunks.append(chunk)
            return b"".join(chunks)

    async def _forward(self, call: _Call, backend: Backend) -> web.StreamResponse:
        assert self._session is not None, "Gateway.start() was not awaited"
        request = call.request
        headers = _end_to_end(request.headers)
        headers["x-request-id"] = call.request_id
        forwarded_for = headers.get("X-Forwarded-For")
        remote = request.remote or ""
        headers["X-Forwarded-For"] = f"{forwarded_for}, {remote}" if forwarded_for else remote
        url = URL(backend.url + origin_form(request.raw_path), encoded=True)
        try:
            upstream = await self._session.request(
                request.method, url, headers=headers, data=call.body or None, allow_redirects=False
            )
        except aiohttp.ClientConnectorError as exc:
            message = f"{call.describe(backend)} unreachable: {exc.os_error}"
            return await self._finish(call, call.error(503, message, retry_after=1))
        except TimeoutError:
            return await self._finish(call, call.error(504, f"{call.describe(backend)} did not answer in time"))
        except aiohttp.ClientError as exc:
            return await self._finish(call, call.error(502, f"{call.describe(backend)} failed: {exc!r}"))
        async with upstream:
            response_headers = _end_to_end(upstream.headers)
            response_headers.setdefault("x-request-id", call.request_id)
            length = upstream.content_length
            if length is not None and length <= self.max_body_bytes:
                try:
                    response_body = await upstream.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    message = f"{call.describe(backend)} broke off its response: {exc!r}"
                    return await self._finish(call, call.error(502, message))
                response = web.Response(
                    status=upstream.status, reason=upstream.reason, headers=response_headers, body=response_body
                )
                return await self._finish(call, response, backend, response_body)
            # Unknown or large length: stream it through. Status and headers are already on the wire
            # when a chunk arrives, so a backend failure mid-body can only cut the connection.
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=response_headers)
            if length is not None:
                response.content_length = length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            return await self._finish(call, response, backend)

    async def _finish(
        self, call: _Call, response: web.StreamResponse,
        backend: Backend | None = None, response_body: bytes | None = None,
    ) -> web.StreamResponse:
        """Send the response, then tell the observers (their cost is not on the caller's latency)."""
        if not response.prepared:
            await response.prepare(call.request)
        await response.write_eof()
        if self.observers:
            request = call.request
            exchange = Exchange(
                request_id=call.request_id, host=call.host, method=request.method, path_qs=origin_form(request.raw_path),
                remote=request.remote, request_headers=request.headers, request_body=call.body,
                target=call.target, backend=backend, status=response.status,
                duration_s=time.perf_counter() - call.started, response_body=response_body,
            )
            for observe in self.observers:
                try:
                    observe(exchange)
                except Exception:  # an observer's bug must not fail the request that was already answered
                    log.exception("gateway observer %r failed for request %s", observe, call.request_id)
        return response
