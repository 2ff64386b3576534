"""The inference-logger benchmark measures what it says: every event delivered, both observe() cases timed."""
from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestServer

from lab_helpers.bench.inference_logger import delivery_rate, observe_cost_us
from lab_helpers.drift.receiver import STORE_FILE, EventStore, make_app


def test_observe_cost_covers_both_cases():
    costs = observe_cost_us(calls=50, repeats=2)
    assert set(costs) == {"unlogged backend", "logged, mode all"} and all(us > 0 for us in costs.values())


def test_delivery_rate_counts_events_the_receiver_stored(tmp_path):
    store = EventStore(tmp_path / STORE_FILE)

    async def main():
        server = TestServer(make_app(store), host="127.0.0.1")
        await server.start_server()
        try:
            return await delivery_rate(10, f"http://127.0.0.1:{server.port}/")
        finally:
            await server.close()

    rate, cpu_us = asyncio.run(main())
    assert rate > 0 and cpu_us > 0
    assert store.db.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall() == [
        ("request", 10), ("response", 10)]
