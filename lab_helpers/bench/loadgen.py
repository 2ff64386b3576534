"""A bounded load generator for notebooks: traffic for metrics, alerts, autoscaling and canaries.

`run_load` sends POSTs to one URL (the gateway on loopback, or the ingress URL you give it; it never
follows a redirect elsewhere) and stops by itself at whichever bound comes first: `requests` sent
or `seconds` elapsed. In-flight requests then finish within `timeout`, so a run lasts at most
``seconds + timeout``. Two modes:

- closed loop (``rate=None``): `concurrency` workers each send the next request as soon as the
  previous one is answered, the most a server can take with that many connections;
- open loop (``rate=R``): request *i* is due at *i / R* seconds whatever the server does, as real
  users arrive; at most `concurrency` are in flight, so a slow server makes requests start late
  (``start`` shows when each really started) instead of piling up without bound.

A share of requests (`invalid_share`, spread evenly) carries `invalid_payload` so error rates show
up in metrics. Memory is one small record per request, and `requests` is capped.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Awaitable, Callable

import aiohttp
import pandas as pd
from yarl import URL

from ..progress import Dots

INVALID_PAYLOAD: dict[str, Any] = {"inputs": "not a list of tensors"}
MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 256
COLUMNS = ["start", "latency_ms", "status", "valid", "error"]
Payload = dict[str, Any] | bytes


@dataclass(frozen=True)
class _Plan:
    url: str
    host: str
    payload_factory: Callable[[int], Payload]
    invalid_body: bytes
    rate: float | None
    concurrency: int
    requests: int
    seconds: float
    invalid_share: Fraction
    timeout: float

    def is_invalid(self, index: int) -> bool:
        """Request `index` carries the invalid payload: exactly floor(n * share) of the first n do, evenly spread."""
        share = self.invalid_share
        return (index + 1) * share // 1 > index * share // 1

    def body(self, index: int) -> tuple[bytes, bool]:
        if self.is_invalid(index):
            return self.invalid_body, False
        return _encode(self.payload_factory(index)), True


def _encode(payload: Payload) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def _plan(url: str, host: str, path: str, payload_factory: Callable[[int], Payload], rate: float | None,
          concurrency: int, requests: int, seconds: float, invalid_share: float, invalid_payload: Payload,
          timeout: float) -> _Plan:
    base = URL(url)
    if base.scheme not in ("http", "https") or not base.host:
        raise ValueError(f"run_load: url must be http(s)://HOST[:PORT], got {url!r}")
    if not path.startswith("/"):
        raise ValueError(f"run_load: path must start with '/', got {path!r}")
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"run_load: requests must be between 1 and {MAX_REQUESTS}, got {requests}")
    if not seconds > 0:
        raise ValueError(f"run_load: seconds must be > 0, got {seconds}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"run_load: concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}")
    if rate is not None and not rate > 0:
        raise ValueError(f"run_load: rate must be > 0 requests/s (or None for closed loop), got {rate}")
    if not 0.0 <= invalid_share <= 1.0:
        raise ValueError(f"run_load: invalid_share must be between 0 and 1, got {invalid_share}")
    if not timeout > 0:
        raise ValueError(f"run_load: timeout must be > 0, got {timeout}")
    return _Plan(url=str(base).rstrip("/") + path, host=host, payload_factory=payload_factory,
                 invalid_body=_encode(invalid_payload), rate=rate, concurrency=concurrency, requests=requests,
                 seconds=seconds, invalid_share=Fraction(invalid_share).limit_denominator(10_000), timeout=timeout)


async def _drive(plan: _Plan) -> list[tuple[float, float, int, bool, str]]:
    """Send the load; one record (start s, latency ms, status, valid, error) per request sent."""
    records: list[tuple[float, float, int, bool, str]] = []
    headers = {"Host": plan.host, "Content-Type": "application/json"} if plan.host else \
        {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=plan.concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers, cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=plan.timeout)) as session:
        started = time.perf_counter()
        deadline = started + plan.seconds

        async def send(index: int) -> None:
            body, valid = plan.body(index)
            sent = time.perf_counter()
            try:
                async with session.post(plan.url, data=body, allow_redirects=False) as response:
                    await response.read()
                    status, error = response.status, ""
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                status, error = 0, f"{type(exc).__name__}: {exc}".rstrip(": ")
            records.append((sent - started, (time.perf_counter() - sent) * 1000.0, status, valid, error))

        if plan.rate is None:
            await closed_loop(send, plan.concurrency, plan.requests, deadline)
        else:
            await _open_loop(plan, send, started, deadline)
    return records


async def closed_loop(send: Callable[[int], Awaitable[None]], concurrency: int, requests: int,
                      deadline: float) -> None:
    """`concurrency` workers each start request *i* (``await send(i)``) as soon as their previous one is answered,
    until `requests` were started or ``time.perf_counter()`` reached `deadline`.

    The one closed loop of the package: `run_load` passes a `send` that records a row per request, the gateway
    benchmark one that posts on its persistent per-path session and keeps its own latency and error counts.
    """
    indexes = itertools.count()

    async def worker() -> None:
        while time.perf_counter() < deadline:
            index = next(indexes)
            if index >= requests:
                return
            await send(index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _open_loop(plan: _Plan, send: Callable[[int], Any], started: float, deadline: float) -> None:
    assert plan.rate is not None
    slots = asyncio.Semaphore(plan.concurrency)
    in_flight: set[asyncio.Task] = set()

    def finished(task: asyncio.Task) -> None:
        in_flight.discard(task)
        slots.release()

    for index in range(plan.requests):
        due = started + index / plan.rate
        if due >= deadline:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await slots.acquire()
        if time.perf_counter() >= deadline:
            slots.release()
            break
        task = asyncio.create_task(send(index))
        in_flight.add(task)
        task.add_done_callback(finished)
    await asyncio.gather(*in_flight)


def run_load(url: str, host: str, path: str, payload_factory: Callable[[int], Payload], *,
             rate: float | None = None, concurrency: int = 4, requests: int = 1000, seconds: float = 30.0,
             invalid_share: float = 0.0, invalid_payload: Payload = INVALID_PAYLOAD, timeout: float = 10.0,
             progress: bool = True) -> pd.DataFrame:
    """POST load to ``url + path`` with the ``Host`` header `host`; one row per request sent.

    `payload_factory(i)` gives the JSON body (dict, or bytes) of request *i*. Columns: ``start``
    (seconds since the run began), ``latency_ms``, ``status`` (0 when no answer came), ``valid``
    (False for the requests given `invalid_payload`), ``error`` (why no answer came).
    Runs in a thread of its own, so it works inside a notebook's event loop too.
    """
    plan = _plan(url, host, path, payload_factory, rate, concurrency, requests, seconds, invalid_share,
                 invalid_payload, timeout)
    pace = f"{rate:g} req/s" if rate else f"{concurrency} concurrent"
    dots = Dots(f"load: up to {requests} requests for at most {seconds:g} s, {pace}") if progress else None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-load") as pool:
        future = pool.submit(asyncio.run, _drive(plan))
        while True:
            try:
                records = future.result(timeout=0.5)
                break
            except FutureTimeout:
                if dots:
                    dots.tick()
    frame = pd.DataFrame(records, columns=COLUMNS).sort_values("start", ignore_index=True)
    if dots:
        statuses = Counter(frame["status"])
        counts = ", ".join(f"{status or 'no answer'}: {count}" for status, count in sorted(statuses.items()))
        dots.done(f"{len(frame)} sent ({counts})")
    return frame
