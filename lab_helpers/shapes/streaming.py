"""A bounded stream of events scored as they arrive: one request per event, or micro-batches.

A real deployment reads the events from a broker (a Kafka topic, one consumer per partition) and
calls KServe for each; here a seeded generator plays the topic: `event_stream` draws Poisson
arrival times at a given rate for a fixed set of records, and both consumers read them in order,
as one partition's consumer does. One by one, an event waits for every event before it; in
micro-batches, the consumer takes the events that arrived while it waited up to ``max_wait_s``
(at most ``max_batch``) and sends them in one request. Latency is arrival to label.
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import httpx

from .scoring import predict_labels


@dataclass(frozen=True)
class Event:
    index: int
    arrives_at: float  # seconds after the stream starts
    record: dict[str, Any]


@dataclass(frozen=True)
class StreamRun:
    latencies: tuple[float, ...]  # per event, arrival to label, in arrival order
    seconds: float                # first arrival to last label
    requests: int


def event_stream(records: list[dict[str, Any]], rate_per_s: float, seed: int = 0) -> list[Event]:
    """One event per record with exponential gaps of mean 1/`rate_per_s`: a bounded Poisson stream."""
    if rate_per_s <= 0 or not records:
        raise ValueError(f"a stream needs records and a rate > 0 events/s, got {len(records)} and {rate_per_s}")
    draw, now, events = random.Random(seed), 0.0, []
    for index, record in enumerate(records):
        events.append(Event(index, now, record))
        now += draw.expovariate(rate_per_s)
    return events


async def _until(loop: asyncio.AbstractEventLoop, start: float, offset: float) -> None:
    delay = start + offset - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def consume(events: list[Event], url: str, model: str, host: str | None = None, max_batch: int = 1,
                  max_wait_s: float = 0.0, timeout: float = 30.0,
                  transport: httpx.AsyncBaseTransport | None = None) -> StreamRun:
    """Score `events` in arrival order with one consumer; ``max_batch=1`` is one request per event."""
    if max_batch < 1 or max_wait_s < 0:
        raise ValueError(f"max_batch must be >= 1 and max_wait_s >= 0, got {max_batch} and {max_wait_s}")
    loop = asyncio.get_running_loop()
    latencies: list[float] = [0.0] * len(events)
    requests, position = 0, 0
    async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
        start = loop.time()
        while position < len(events):
            first = events[position]
            await _until(loop, start, first.arrives_at)
            if max_batch > 1:  # wait for more, up to max_wait_s or until the batch would be full
                last = events[min(position + max_batch, len(events)) - 1]
                await _until(loop, start, min(first.arrives_at + max_wait_s, last.arrives_at))
            now = loop.time() - start
            batch = [e for e in events[position:position + max_batch] if e.arrives_at <= now] or [first]
            await predict_labels(client, url, model, [e.record for e in batch], host)
            requests += 1
            done = loop.time() - start
            for event in batch:
                latencies[event.index - events[0].index] = done - event.arrives_at
            position += len(batch)
        seconds = loop.time() - start - events[0].arrives_at
    return StreamRun(tuple(latencies), seconds, requests)
