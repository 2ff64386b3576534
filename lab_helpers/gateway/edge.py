"""The gateway's HTTP edge: what happens before a request reaches the proxy, and errors raised below it.

Two things a real edge (Envoy) does that aiohttp's server does not do by default:

- **A header deadline.** A connection that has not delivered a complete request head within
  `header_timeout_s` of opening (or of its last response) is closed, as Envoy's
  ``request_headers_timeout`` and ``idle_timeout`` do. aiohttp's keep-alive timer is exactly this
  timer (it also runs from the moment a connection opens), so it is set to the deadline.
- **Dropping a connection.** An L3/L4 network-policy denial gets no answer at all, as dropped
  packets get none: `linger_unanswered` keeps the connection open without a word until the caller
  gives up or a bound passes, then closes it.
- **One error shape.** The HTTP layer answers malformed requests itself (no Host on HTTP/1.1, a
  request line or header over the size limit, garbage): those answers are JSON ``{"error": ...}``
  like every other gateway error, instead of aiohttp's plain text that echoes the offending bytes.

Envoy's timeouts: https://www.envoyproxy.io/docs/envoy/v1.39.0/faq/configuration/timeouts
"""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong

MAX_LINE_BYTES = 8190  # aiohttp's limit for the request line and for one header field
CLOSED_POLL_S = 0.2     # how often a dropped connection is checked for the caller having gone


class Dropped:
    """The answer "no answer": a request whose packets a network policy drops."""

    def __repr__(self) -> str:
        return "DROP"


DROP = Dropped()


async def linger_unanswered(request: web.BaseRequest, linger_s: float) -> web.Response:
    """Say nothing until the caller closes the connection or `linger_s` passes, then close it.

    Returns a response object only because aiohttp's handler contract wants one: the connection
    is closed before it, so none of it is ever written.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + linger_s
    while loop.time() < deadline and request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(min(CLOSED_POLL_S, max(deadline - loop.time(), 0)))
    if request.transport is not None:
        request.transport.abort()
    response = web.Response(status=444)  # never sent (nginx's code for "closed without a response")
    response.force_close()
    return response


def edge_error_message(status: int, exc: BaseException | None, message: str | None) -> str:
    """What a client is told when the HTTP layer rejects its request; never echoes its bytes back."""
    if isinstance(exc, LineTooLong):
        return f"request line or a header field is longer than {MAX_LINE_BYTES} bytes"
    if status >= 500:
        return "the gateway failed while handling this request (see the control-plane log)"
    # aiohttp's messages quote the offending bytes on the lines after the first: keep the first only.
    text = (message or (str(exc) if exc else "")).strip().split("\n", 1)[0].rstrip(" :")
    return f"malformed HTTP request: {text}" if text else "malformed HTTP request"


class _EdgeRequestHandler(web.RequestHandler):
    """aiohttp's per-connection handler with errors answered as JSON."""

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs it; raises if a response already started
        response = web.json_response({"error": edge_error_message(status, exc, message)}, status=status)
        response.force_close()
        return response


class EdgeServer(web.Server):
    """`web.Server` whose connections close after `header_timeout_s` without a request head."""

    def __init__(self, handler: Any, *, header_timeout_s: float, **kwargs: Any):
        super().__init__(handler, keepalive_timeout=header_timeout_s, **kwargs)

    def __call__(self) -> web.RequestHandler:
        return _EdgeRequestHandler(self, loop=self._loop, **self._kwargs)
