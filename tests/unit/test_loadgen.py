"""The load generator stops by itself at its bounds, keeps its rate, and mixes in invalid requests as asked."""
from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from lab_helpers.bench.loadgen import closed_loop, run_load
from lab_helpers.bench.phases import run_phases

PATH = "/v2/models/iris/infer"
HOST = "iris-lab.example.com"


class Backend(ThreadingHTTPServer):
    """A model server stand-in: 400 for the invalid payload, 200 otherwise, after `delay` seconds."""

    daemon_threads = True

    def __init__(self, delay: float = 0.0):
        super().__init__(("127.0.0.1", 0), Handler)
        self.delay = delay
        self.hosts: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: Backend

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.hosts.append(self.headers["Host"])
        time.sleep(self.server.delay)
        if self.path == "/redirect":
            status, reply = 302, b""
        else:
            status, reply = (400, b'{"error": "bad"}') if b"not a list" in body else (200, b'{"ok": true}')
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://example.com/")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def serve(delay: float = 0.0) -> Iterator[Backend]:
    server = Backend(delay)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def backend() -> Iterator[Backend]:
    yield from serve()


@pytest.fixture()
def slow_backend() -> Iterator[Backend]:
    yield from serve(delay=0.05)


def payload(i: int) -> dict:
    return {"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [i]}]}


def test_stops_after_the_requested_count_and_sends_the_host_header(backend):
    frame = run_load(backend.url, HOST, PATH, payload, requests=25, seconds=30, progress=False)
    assert list(frame.columns) == ["start", "latency_ms", "status", "valid", "error"]
    assert len(frame) == 25 and set(frame["status"]) == {200} and frame["valid"].all()
    assert backend.hosts == [HOST] * 25
    assert frame["start"].is_monotonic_increasing and (frame["latency_ms"] > 0).all()


def test_the_closed_loop_sends_each_index_once_with_at_most_concurrency_in_flight():
    sent, in_flight, peak = [], 0, 0

    async def send(index: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)  # let the other workers run while this one "waits for its answer"
        sent.append(index)
        in_flight -= 1

    asyncio.run(closed_loop(send, concurrency=3, requests=10, deadline=time.perf_counter() + 3600))
    assert sorted(sent) == list(range(10)) and peak == 3


def test_the_closed_loop_starts_nothing_after_its_deadline():
    sent = []

    async def send(index: int) -> None:
        sent.append(index)

    asyncio.run(closed_loop(send, concurrency=2, requests=10, deadline=time.perf_counter() - 1))
    assert sent == []


def test_stops_at_the_time_bound_in_closed_loop(slow_backend):
    frame = run_load(slow_backend.url, HOST, PATH, payload, concurrency=2, requests=100_000, seconds=0.5,
                     progress=False)
    assert frame["start"].max() < 0.5  # nothing starts after the bound
    assert len(frame) <= 2 * (0.5 / 0.05 + 1)  # 2 connections, each request held 50 ms by the server


def test_open_loop_sends_at_the_target_rate(backend):
    frame = run_load(backend.url, HOST, PATH, payload, rate=40, requests=1000, seconds=1.0, progress=False)
    assert len(frame) == 40  # due times 0, 1/40, ... below the 1 s bound
    assert (frame["start"] >= frame.index / 40 - 0.001).all()  # never before its due time (event-loop clock slack)


def test_open_loop_with_all_connections_busy_starts_late_instead_of_queueing(slow_backend):
    frame = run_load(slow_backend.url, HOST, PATH, payload, rate=200, concurrency=1, requests=1000, seconds=0.5,
                     progress=False)
    assert len(frame) < 15  # one connection at 50 ms a request, not the 100 a 200 req/s schedule asks for
    assert frame["start"].diff().dropna().min() >= 0.045


def test_invalid_share_is_exact_and_evenly_spread(backend):
    frame = run_load(backend.url, HOST, PATH, payload, concurrency=1, requests=40, seconds=30, invalid_share=0.25,
                     progress=False)
    assert frame["valid"].tolist() == [True, True, True, False] * 10  # one connection: rows in request order
    assert set(frame.loc[~frame["valid"], "status"]) == {400} and set(frame.loc[frame["valid"], "status"]) == {200}


def test_a_server_that_is_not_there_gives_rows_with_status_0_and_the_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    frame = run_load(f"http://127.0.0.1:{closed_port}", HOST, PATH, payload, requests=3, seconds=5, progress=False)
    assert len(frame) == 3 and set(frame["status"]) == {0}
    assert frame["error"].str.contains("Connect").all()


def test_redirects_are_not_followed(backend):
    frame = run_load(backend.url, HOST, "/redirect", payload, requests=2, seconds=5, progress=False)
    assert set(frame["status"]) == {302}


def test_runs_inside_a_running_event_loop_as_in_a_notebook(backend):
    async def notebook_cell():
        return run_load(backend.url, HOST, PATH, payload, requests=5, seconds=5, progress=False)

    assert len(asyncio.run(notebook_cell())) == 5


def test_progress_prints_one_line_with_a_summary(backend, capsys):
    run_load(backend.url, HOST, PATH, payload, requests=4, seconds=5, invalid_share=0.5)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert re.fullmatch(r"⏳ load: up to 4 requests for at most 5 s, 4 concurrent: 4 sent \(200: 2, 400: 2\) in [\d.]+ s\n",
                        out.rsplit("\r", 1)[-1])  # the line as it stands once rewritten in place


@pytest.mark.parametrize("bad, message", [
    ({"requests": 0}, "requests must be between 1"),
    ({"seconds": 0}, "seconds must be > 0"),
    ({"rate": 0}, "rate must be > 0"),
    ({"concurrency": 0}, "concurrency must be between 1"),
    ({"invalid_share": 1.5}, "invalid_share must be between 0 and 1"),
])
def test_bad_bounds_are_refused_before_anything_is_sent(backend, bad, message):
    with pytest.raises(ValueError, match=message):
        run_load(backend.url, HOST, PATH, payload, progress=False, **bad)
    assert backend.hosts == []


def test_only_http_urls_are_accepted():
    with pytest.raises(ValueError, match="url must be http"):
        run_load("file:///etc/passwd", HOST, PATH, payload, progress=False)


def test_phases_run_one_after_the_other_at_their_rates(backend):
    frame, phases = run_phases(backend.url, HOST, PATH, payload, rates=[20, 40], seconds=0.25, invalid_share=0.5)
    assert [p.rate for p in phases] == [20, 40]
    assert phases[0].start < phases[0].end <= phases[1].start < phases[1].end
    for rate, rows in frame.groupby("rate"):
        assert 1 <= len(rows) <= rate * 0.25  # due times 0, 1/rate, ... below each phase's 0.25 s bound
        assert (~rows["valid"]).sum() == len(rows) // 2  # the invalid share counts from each phase's start
