"""``python -m lab_helpers bench inference_logger``: what KServe's logger costs the local gateway, and its rate.

Two figures:

- the observer's CPU per logged exchange (shaping the request and response CloudEvents and enqueueing
  them), in-process, against an exchange of an unlogged backend (one dictionary miss): what every
  answered request pays on the gateway's event loop;
- the sender's delivery rate: events sent by the 5 workers to a real drift receiver process (SQLite
  store) until the queue is drained, with this process's CPU per event and the receiver's count.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from typing import Sequence

import httpx
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CollectorRegistry

from ..gateway.inference_logger import AgentConfig, InferenceLogger
from ..gateway.proxy import Exchange
from ..gateway.routes import Backend, RouteTarget
from ..processes import free_port

LOGGED, UNLOGGED = "http://127.0.0.1:40001", "http://127.0.0.1:40002"
BODY = b'{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [[6.8, 2.8, 4.8, 1.4], ' \
       b'[6.0, 3.4, 4.5, 1.6]]}]}'
ANSWER = b'{"model_name": "iris", "outputs": [{"name": "output-0", "shape": [2], "datatype": "INT64", "data": [1, 1]}]}'


def _exchange(backend: str) -> Exchange:
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json", "X-Request-Id": "r-1"}))
    return Exchange("r-1", "iris-lab.example.com", "POST", "/v2/models/iris/infer", "127.0.0.1", headers, BODY,
                    RouteTarget("iris-predictor", "lab", "1"), Backend(backend), 200, 0.002, ANSWER)


def _config(url: str) -> AgentConfig:
    return AgentConfig(url=url, mode="all", inference_service="iris", namespace="lab", component="predictor",
                       endpoint="", source="iris-predictor-bench", metadata_headers=("X-Request-Id",))


def observe_cost_us(calls: int, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` microseconds per observe() call, logged and unlogged backend."""
    logger = InferenceLogger(CollectorRegistry(), gateway_url=lambda: None, queue_size=calls * 2)
    logger.set_agents({LOGGED: _config("http://127.0.0.1:1/")})
    costs = {}
    for name, backend in (("unlogged backend", UNLOGGED), ("logged, mode all", LOGGED)):
        exchange, best = _exchange(backend), float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(calls):
                logger.observe(exchange)
            best = min(best, (time.perf_counter() - started) / calls)
            while not logger.queue.empty():
                logger.queue.get_nowait()
        costs[name] = best * 1e6
    return costs


async def delivery_rate(exchanges: int, receiver_url: str) -> tuple[float, float]:
    """(events per second delivered, this process's CPU microseconds per event) for `exchanges` exchanges."""
    logger = InferenceLogger(CollectorRegistry(), gateway_url=lambda: None, queue_size=exchanges * 2)
    logger.set_agents({LOGGED: _config(receiver_url)})
    exchange = _exchange(LOGGED)
    for _ in range(exchanges):
        logger.observe(exchange)
    await logger.start()
    cpu, started = time.process_time(), time.perf_counter()
    await logger.queue.join()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await logger.stop()
    failures = sum(s.value for m in logger.failed.collect() for s in m.samples if s.name.endswith("_total"))
    if failures:
        raise RuntimeError(f"{failures:.0f} events were not delivered to {receiver_url}")
    return exchanges * 2 / elapsed, cpu / (exchanges * 2) * 1e6


def _start_receiver(data_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lab_helpers.drift.receiver", "--data-dir", data_dir,
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the drift receiver did not answer /healthz within 30 s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers bench inference_logger", description=__doc__)
    parser.add_argument("--calls", type=int, default=20000, help="observe() calls per repeat (default 20000)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats, the best is kept (default 5)")
    parser.add_argument("--exchanges", type=int, default=2000, help="exchanges delivered (default 2000)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, 1-min load average {os.getloadavg()[0]:.2f} before the run")
    print(f"observe() per exchange (best of {args.repeats} x {args.calls} calls):")
    for name, us in observe_cost_us(args.calls, args.repeats).items():
        print(f"  {name:<20} {us:6.1f} us")
    with tempfile.TemporaryDirectory() as data_dir:
        receiver, url = _start_receiver(data_dir)
        try:
            rate, cpu_us = asyncio.run(delivery_rate(args.exchanges, url))
            stored = httpx.get(f"{url}/metrics", timeout=10).text
        finally:
            receiver.terminate()
            receiver.wait(10)
    accepted = [line for line in stored.splitlines() if line.startswith("drift_receiver_events_stored_total")]
    print(f"delivery to a drift receiver process: {rate:.0f} events/s, {cpu_us:.0f} us of sender CPU per event "
          f"({args.exchanges * 2} events, 5 workers); receiver: {'; '.join(accepted)}")
    return 0
