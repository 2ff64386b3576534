"""Benchmarks of the local target. `python -m lab_helpers.bench gateway` measures the gateway's overhead.

Three processes, so none of them steals the others' event loop: a real KServe Python runtime
(kserve.ModelServer serving a scikit-learn LogisticRegression trained on iris), the Gateway in
front of it, and this process as the load generator (asyncio + aiohttp on uvloop). The same V2
infer request is sent by N concurrent clients, direct then through the gateway, alternating
rounds so that drift in machine load hits both paths alike.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from typing import IO, Sequence

import aiohttp
import numpy as np
import psutil
import uvloop

from ..gateway import Backend, Gateway, Route, RouteTable, RouteTarget
from .loadgen import closed_loop

MODEL_NAME = "iris"
ROUTE_HOST = "iris-bench.example.com"  # KServe's {{.Name}}-{{.Namespace}}.example.com
INFER_REQUEST = {
    "inputs": [
        {"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
    ]
}
STARTUP_TIMEOUT_S = 60.0


# --- the runtime under test ("pod") -------------------------------------------------------------

def serve_runtime(listener_fd: int) -> None:
    """Serve the iris model with kserve.ModelServer's REST server on an already bound loopback socket.

    KServe's own start() binds 0.0.0.0 on a fixed port; handing uvicorn a socket bound by the
    parent keeps it on loopback and on a free port. kserve and scikit-learn are imported here so
    the load generator process stays light.
    """
    import kserve
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer
    from kserve.utils.utils import get_predict_input, get_predict_response
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    class IrisModel(kserve.Model):
        def load(self) -> bool:
            features, labels = load_iris(return_X_y=True)
            self.classifier = LogisticRegression(max_iter=1000).fit(features, labels)
            self.ready = True
            return self.ready

        def predict(self, payload, headers=None):
            return get_predict_response(payload, self.classifier.predict(get_predict_input(payload)), self.name)

    model = IrisModel(MODEL_NAME)
    model.load()
    server = kserve.ModelServer(enable_grpc=False, workers=1)
    server.register_model(model)
    listener = socket.socket(fileno=listener_fd)
    port = listener.getsockname()[1]
    RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, port).run(
        sockets=[listener]
    )


def serve_gateway(backend_url: str, policy: bool = False) -> None:
    """Serve a Gateway routing ROUTE_HOST to `backend_url`; print its port, then run until killed.

    With `policy`, the gateway checks every request against the lab's iris CiliumNetworkPolicy as the control
    plane's does (ROUTE_HOST is an ingress host: the ingress gateway's identity, L7 rules that allow the infer).
    """

    async def main() -> None:
        table = RouteTable([Route(ROUTE_HOST, [RouteTarget(MODEL_NAME, "bench", "1", [Backend(backend_url)])])])
        admit = None
        if policy:
            from .policy import DESTINATION, lab_policy_enforcer

            destination = replace(DESTINATION, namespace="bench", service=MODEL_NAME)
            admit = lab_policy_enforcer(destination).admit
        gateway = Gateway(table, admit=admit)
        port = await gateway.start()
        print(port, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await gateway.stop()

    uvloop.run(main())


class _Child:
    """A helper process of the benchmark, with its stderr kept for the error message if it dies."""

    def __init__(self, name: str, args: list[str], *, stdout: int | IO[bytes], pass_fds: Sequence[int] = ()):
        self.name = name
        self._stderr = tempfile.TemporaryFile()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "lab_helpers.bench", *args],
            stdout=stdout, stderr=self._stderr, pass_fds=pass_fds,
        )
        self.process = psutil.Process(self.popen.pid)

    def failure(self, what: str) -> RuntimeError:
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-15:]
        return RuntimeError(
            f"{self.name} {what} (exit code {self.popen.poll()}); its stderr ends with:\n" + "\n".join(tail)
        )

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._stderr.close()


def _start_runtime() -> tuple[_Child, str]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    try:
        port = listener.getsockname()[1]
        child = _Child("KServe runtime", ["serve-runtime", "--listener-fd", str(listener.fileno())],
                       stdout=subprocess.DEVNULL, pass_fds=[listener.fileno()])
    finally:
        listener.close()  # the child holds its own copy
    return child, f"http://127.0.0.1:{port}"


def _start_gateway(backend_url: str, policy: bool) -> tuple[_Child, str]:
    child = _Child("gateway", ["serve-gateway", "--backend", backend_url, *(["--policy"] if policy else [])],
                   stdout=subprocess.PIPE)
    assert child.popen.stdout is not None
    line = child.popen.stdout.readline()  # the first and only line it prints; empty if it died
    if not line.strip().isdigit():
        failure = child.failure("did not report its port")
        child.stop()
        raise failure
    return child, f"http://127.0.0.1:{int(line)}"


# --- the load generator -------------------------------------------------------------------------

@dataclass
class PathResult:
    """What one path (direct or gateway) did over all rounds."""

    name: str
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    round_throughputs: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies_s) + self.errors

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q)) * 1000 if self.latencies_s else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.wall_s if self.wall_s else 0.0

    def cpu_share(self, process: str) -> str:
        """CPU time of `process` over the measured wall time, as a share of one core."""
        return f"{self.cpu_s[process] / self.wall_s:.0%}" if process in self.cpu_s and self.wall_s else "-"


class _Path:
    """One way to reach the runtime (direct or through the gateway), with its own keep-alive pool."""

    def __init__(self, name: str, base_url: str, headers: dict[str, str], concurrency: int, processes: tuple[str, ...]):
        self.name = name
        self.processes = processes  # the helper processes a request on this path passes through
        self.url = f"{base_url}/v2/models/{MODEL_NAME}/infer"
        self.headers = {"Content-Type": "application/json", **headers}
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency), cookie_jar=aiohttp.DummyCookieJar()
        )

    async def check(self, body: bytes) -> dict:
        async with self.session.post(self.url, data=body, headers=self.headers) as response:
            text = await response.text()
            if response.status != 200:
                raise RuntimeError(f"{self.name}: POST {self.url} answered {response.status}: {text[:300]}")
            return json.loads(text)


async def _drive(path: _Path, body: bytes, concurrency: int, requests: int, seconds: float, result: PathResult) -> None:
    """`concurrency` closed-loop clients (the load generator's loop) until `requests` were sent or `seconds` passed."""
    latencies, post, url, headers = result.latencies_s, path.session.post, path.url, path.headers

    async def send(_index: int) -> None:
        started = time.perf_counter()
        try:
            async with post(url, data=body, headers=headers) as response:
                await response.read()
                ok = response.status == 200
        except aiohttp.ClientError:
            ok = False
        if ok:
            latencies.append(time.perf_counter() - started)
        else:
            result.errors += 1

    await closed_loop(send, concurrency, requests, time.perf_counter() + seconds)


async def _measure(
    paths: list[_Path], children: dict[str, _Child], body: bytes, *,
    concurrency: int, requests: int, seconds: float, rounds: int,
) -> list[PathResult]:
    results = {path.name: PathResult(path.name) for path in paths}
    for path in paths:  # warm-up: connections open, code paths hot; not measured
        await _drive(path, body, concurrency, concurrency * 20, seconds, PathResult(path.name))
    for round_index in range(rounds):
        order = paths if round_index % 2 == 0 else paths[::-1]
        for path in order:
            result = results[path.name]
            on_path = {name: child for name, child in children.items() if name in path.processes}
            cpu_before = {name: child.cpu_seconds() for name, child in on_path.items()}
            own_before, started, answered = time.process_time(), time.perf_counter(), len(result.latencies_s)
            await _drive(path, body, concurrency, requests, seconds, result)
            wall = time.perf_counter() - started
            result.wall_s += wall
            result.round_throughputs.append((len(result.latencies_s) - answered) / wall)
            result.cpu_s["loadgen"] = result.cpu_s.get("loadgen", 0.0) + time.process_time() - own_before
            for name, child in on_path.items():
                result.cpu_s[name] = result.cpu_s.get(name, 0.0) + child.cpu_seconds() - cpu_before[name]
    return [results[path.name] for path in paths]


def format_table(direct: PathResult, gateway: PathResult) -> str:
    """The comparison as printed by the CLI and recorded in docs/benchmarks.md."""
    lines = [
        f"{'path':<8} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>6}  "
        f"{'loadgen CPU':>11} {'gateway CPU':>11} {'runtime CPU':>11}  req/s per round"
    ]
    for result in (direct, gateway):
        lines.append(
            f"{result.name:<8} {result.requests:>8} {result.errors:>6} {result.percentile_ms(50):>7.2f} "
            f"{result.percentile_ms(99):>7.2f} {result.throughput:>6.0f}  {result.cpu_share('loadgen'):>11} "
            f"{result.cpu_share('gateway'):>11} {result.cpu_share('runtime'):>11}  "
            + " ".join(f"{value:.0f}" for value in result.round_throughputs)
        )
    ratio = gateway.throughput / direct.throughput if direct.throughput else float("nan")
    per_round = " ".join(f"{g / d:.2f}" for g, d in zip(gateway.round_throughputs, direct.round_throughputs) if d)
    added_p50 = gateway.percentile_ms(50) - direct.percentile_ms(50)
    met = "met" if ratio >= 0.9 and added_p50 < 1.0 else "NOT met"
    for result in (direct, gateway):
        answered = len(result.latencies_s)
        costs = ", ".join(
            f"{process} {seconds / answered * 1e6:.0f}" for process, seconds in result.cpu_s.items() if answered
        )
        lines.append(f"CPU us per request, {result.name}: {costs}")
    lines.append(
        f"gateway/direct throughput {ratio:.2f} (per round: {per_round}), added p50 {added_p50:+.2f} ms; "
        f"goal >= 0.90 and < 1 ms: {met}"
    )
    return "\n".join(lines)


async def gateway_overhead(
    *, requests: int, concurrency: int, seconds: float, rounds: int, policy: bool = False
) -> tuple[PathResult, PathResult]:
    """Start runtime and gateway, measure both paths, stop everything; (direct, gateway) results."""
    runtime, runtime_url = _start_runtime()
    gateway: _Child | None = None
    paths: list[_Path] = []
    try:
        gateway, gateway_url = _start_gateway(runtime_url, policy)
        body = json.dumps(INFER_REQUEST).encode()
        paths = [
            _Path("direct", runtime_url, {}, concurrency, ("runtime",)),
            _Path("gateway", gateway_url, {"Host": ROUTE_HOST}, concurrency, ("gateway", "runtime")),
        ]
        await _wait_ready(paths[0], runtime)
        answers = [await path.check(body) for path in paths]
        if answers[0]["outputs"] != answers[1]["outputs"]:
            raise RuntimeError(f"direct and gateway answers differ: {answers[0]} vs {answers[1]}")
        direct, through = await _measure(
            paths, {"runtime": runtime, "gateway": gateway}, body,
            concurrency=concurrency, requests=requests, seconds=seconds, rounds=rounds,
        )
        return direct, through
    finally:
        for path in paths:
            await path.session.close()
        if gateway is not None:
            gateway.stop()
        runtime.stop()


async def _wait_ready(path: _Path, runtime: _Child) -> None:
    ready_url = path.url.rsplit("/", 1)[0] + "/ready"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if runtime.popen.poll() is not None:
            raise runtime.failure("exited during startup")
        try:
            async with path.session.get(ready_url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise runtime.failure(f"not ready after {STARTUP_TIMEOUT_S:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers.bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("gateway", help="gateway overhead: direct runtime vs through the gateway")
    bench.add_argument("--requests", type=int, default=5000, help="requests per path per round (default 5000)")
    bench.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    bench.add_argument("--seconds", type=float, default=10.0, help="time limit per path per round (default 10)")
    bench.add_argument("--rounds", type=int, default=3, help="alternating rounds per path (default 3)")
    bench.add_argument("--policy", action="store_true",
                       help="the gateway checks requests against the lab's iris CiliumNetworkPolicy (L7 rules)")
    runtime = commands.add_parser("serve-runtime", help="(helper process of the benchmark) the KServe runtime")
    runtime.add_argument("--listener-fd", type=int, required=True)
    proxy = commands.add_parser("serve-gateway", help="(helper process of the benchmark) the gateway")
    proxy.add_argument("--backend", required=True)
    proxy.add_argument("--policy", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "serve-runtime":
        serve_runtime(args.listener_fd)
        return 0
    if args.command == "serve-gateway":
        serve_gateway(args.backend, args.policy)
        return 0
    for name in ("requests", "concurrency", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.seconds <= 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    load_before = os.getloadavg()[0]
    direct, through = uvloop.run(gateway_overhead(
        requests=args.requests, concurrency=args.concurrency, seconds=args.seconds, rounds=args.rounds,
        policy=args.policy,
    ))
    print(f"gateway overhead: KServe ModelServer (sklearn LogisticRegression, iris), V2 infer of 2 rows, "
          f"{args.concurrency} clients, {args.rounds} alternating rounds per path; "
          f"{os.cpu_count()} CPUs, 1-min load average {load_before:.2f} before the run"
          + ("; the gateway checks the lab's iris CiliumNetworkPolicy" if args.policy else ""))
    print(format_table(direct, through))
    return 1 if direct.errors or through.errors else 0

