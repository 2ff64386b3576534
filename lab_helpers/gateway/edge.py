"""The gateway's HTTP edge: what happens before a request reaches the proxy, and errors raised below it.

Two things a real edge (Envoy) does that aiohttp's server does not do by default:

- **A header deadline.** A connection that has not delivered a complete request head within
  `header_timeout_s` of opening (or of its last response) is closed, as Envoy's
  ``request_headers_timeout`` and ``idle_timeout`` do. aiohttp's keep-alive timer is exactly this
  timer (it also runs from the moment a connection opens), so it is set to the deadline.
- **One error shape.** The HTTP layer answers malformed requests itself (no Host on HTTP/1.1, a
  request line or header over the size limit, garbage): those answers are JSON ``{"error": ...}``
  like every other gateway error, instead of aiohttp's plain text that echoes the offending bytes.

Envoy's timeouts: https://www.envoyproxy.io/docs/envoy/v1.39.0/faq/configuration/timeouts
"""
from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong

MAX_LINE_BYTES = 8190  # aiohttp's limit for the request line and for one header field


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
