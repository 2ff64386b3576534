"""The bounded event stream and its consumer: one request per event, or micro-batches of what has arrived."""
import asyncio
import json

import httpx
import pytest

from lab_helpers.shapes.streaming import consume, event_stream

RECORDS = [{"petal_width_mm": float(i)} for i in range(40)]


def service(sizes: list[int]):
    async def answer(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["instances"]
        sizes.append(len(records))
        await asyncio.sleep(0.005)
        return httpx.Response(200, json={"predictions": ["setosa"] * len(records)})

    return httpx.MockTransport(answer)


def test_the_stream_is_bounded_seeded_and_in_arrival_order():
    events = event_stream(RECORDS, rate_per_s=1000, seed=3)
    assert [e.index for e in events] == list(range(40)) and events[0].arrives_at == 0.0
    assert all(a.arrives_at <= b.arrives_at for a, b in zip(events, events[1:]))
    assert events == event_stream(RECORDS, rate_per_s=1000, seed=3)
    with pytest.raises(ValueError, match="a rate > 0"):
        event_stream(RECORDS, rate_per_s=0)


def test_one_by_one_sends_each_event_alone():
    sizes: list[int] = []
    run = asyncio.run(consume(event_stream(RECORDS, 2000), "http://svc", "iris", transport=service(sizes)))
    assert sizes == [1] * 40 and run.requests == 40 and len(run.latencies) == 40
    assert min(run.latencies) >= 0 and run.seconds > 0


def test_micro_batches_take_what_arrived_up_to_the_batch_size():
    sizes: list[int] = []
    run = asyncio.run(consume(event_stream(RECORDS, 2000), "http://svc", "iris", max_batch=8, max_wait_s=0.05,
                              transport=service(sizes)))
    assert sum(sizes) == 40 and max(sizes) <= 8 and run.requests == len(sizes) < 40
    assert len(run.latencies) == 40


def test_bad_batching_parameters_are_refused():
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        asyncio.run(consume(event_stream(RECORDS, 10), "http://svc", "iris", max_batch=0))
