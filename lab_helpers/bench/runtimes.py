"""`python -m lab_helpers bench runtimes`: KServe's Python runtime vs Triton on the same model, same client.

The model is the registry's heavier one (digits: a scikit-learn MLP, 64 inputs): kserve-python serves
the estimator with the lab's `kserve.ModelServer` runtime, Triton serves its ONNX export (checked
equal on the held-out set) through the local Triton image. Both are started here as the local target's
pods start them, with one gateway process in front routing by Host like the ingress, and a **null
backend** behind the same gateway (it answers at almost no cost with a body as large as Triton's answer for
the same rows): its throughput is the gateway's ceiling, so a limit of the gateway is not read as one of Triton.

The client is `wrk`, a C load generator: a Python client costs 150-250 µs of CPU per request on
2 cores and would cap any server near 4-5k req/s. For every batch size (rows per request) and number of
closed-loop clients, the five subjects run one after another, so drift in machine load hits them alike.
CPU per request is each process tree's user+system time over the answered requests. Triton's own
statistics (/v2/models/NAME/stats) give rows per model execution: above the rows per request means
dynamic batching joined requests.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import httpx
import numpy as np
import pandas as pd
import psutil

from ..inference import v2_tensor
from ..processes import free_port

MODEL = "digits"
HOSTS = {"kserve-python": "digits-kserve.bench.example.com", "triton": "digits-triton.bench.example.com",
         "null": "null.bench.example.com"}
# The null backend answers with as many bytes as a request's `x-null-bytes` header asks (Triton's answer for the
# same rows), so the gateway relays an answer of the same size as Triton's: a like-for-like ceiling.
NULL_BYTES_HEADER = "x-null-bytes"
STARTUP_TIMEOUT_S = 90.0
GOAL_DIRECT_RATIO = 10.0
GOAL_GATEWAY_SHARE = 0.9


@dataclass(frozen=True)
class Cell:
    """One measurement: a subject (runtime and path) at a batch size and a number of clients."""

    runtime: str          # kserve-python | triton | null
    path: str             # direct | gateway
    batch: int
    clients: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_us: dict[str, float] = field(default_factory=dict)   # process -> CPU µs per answered request
    rows_per_execution: float | None = None                   # Triton only: dynamic batching at work

    @property
    def rps(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rps * self.batch


# --- wrk -----------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def wrk_script(body: bytes, host: str | None, extra: dict[str, str] | None = None) -> str:
    """A wrk Lua script that POSTs `body` (JSON) with an optional Host header and extra headers."""
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    for name, value in {**({"Host": host} if host else {}), **(extra or {})}.items():
        headers += f'wrk.headers["{name}"] = "{value}"\n'
    return f'wrk.method = "POST"\nwrk.body = [==[{body.decode()}]==]\n{headers}'


def parse_wrk(output: str) -> dict[str, float]:
    """requests, errors (non-2xx and socket errors), seconds, p50_ms, p99_ms from `wrk --latency` output."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if done is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    percentiles = {int(p): float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$",
                                                                          output, re.MULTILINE)}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    return {"requests": int(done.group(1)), "errors": errors,
            "seconds": float(done.group(2)) * _UNITS[done.group(3)] / 1e3,
            "p50_ms": percentiles.get(50, float("nan")), "p99_ms": percentiles.get(99, float("nan"))}


def run_wrk(url: str, script: Path, clients: int, seconds: int) -> tuple[dict[str, float], float]:
    """One closed-loop run of whole `seconds` (wrk's unit); returns wrk's figures and wrk's own CPU seconds."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: `make setup` installs the Debian package (apt-get install wrk)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([wrk, "-t1", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                          capture_output=True, text=True, timeout=seconds + 30, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_wrk(done.stdout), cpu


# --- the processes under test ------------------------------------------------------------------

class Server:
    """A process this bench started, with its log kept for the error message if it dies."""

    def __init__(self, name: str, argv: list[str], port: int, ready_path: str = "/"):
        self.name, self.url = name, f"http://127.0.0.1:{port}"
        self.ready_url = self.url + ready_path
        self.log = tempfile.TemporaryFile()
        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.process = psutil.Process(self.popen.pid)

    def wait_ready(self, headers: dict[str, str] | None = None) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise self.failure("exited during startup")
            try:
                if httpx.get(self.ready_url, headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise self.failure(f"not ready after {STARTUP_TIMEOUT_S:.0f} s")

    def failure(self, what: str) -> RuntimeError:
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace").strip().splitlines()[-15:]
        return RuntimeError(f"{self.name} {what} (exit code {self.popen.poll()}); its log ends with:\n"
                            + "\n".join(tail))

    def cpu_seconds(self) -> float:
        """User+system time of the process and its children (Triton's server and backend stub run below it)."""
        total = 0.0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=40)  # Triton waits for in-flight requests, then unloads
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()


def prepare_model(dest: Path) -> tuple[Path, Path, np.ndarray]:
    """The digits model as kserve-sklearnserver loads it (one model.joblib) and as a Triton repository
    (its ONNX export, parity-checked); and the held-out rows to send."""
    import joblib

    from ..models.onnx_export import checked_onnx
    from ..models.training import LAB_MODELS, train
    from ..models.triton_repository import write_repository

    trained = train(next(spec for spec in LAB_MODELS if spec.name == MODEL))
    sklearn_dir = dest / "sklearn"
    sklearn_dir.mkdir(parents=True)
    joblib.dump(trained.estimator, sklearn_dir / "model.joblib")
    onnx_model, _ = checked_onnx(trained)
    write_repository(onnx_model, MODEL, dest / "triton")
    return sklearn_dir, dest / "triton", trained.dataset.X_test.to_numpy(np.float32)


def request_body(runtime: str, rows: np.ndarray) -> bytes:
    """The V2 request each runtime's contract asks for: one [rows, 64] tensor (FP32 for the ONNX graph)."""
    name, datatype = ("input", "FP32") if runtime == "triton" else ("input-0", "FP64")
    return json.dumps(v2_tensor(name, rows, datatype)).encode()


def start_servers(sklearn_dir: Path, triton_repo: Path) -> dict[str, Server]:
    kserve_port, triton_port, null_port, gateway_port = (free_port() for _ in range(4))
    python = sys.executable
    servers = {
        "kserve-python": Server("KServe Python runtime", [
            python, "-m", "lab_helpers.runtime.server", "--model-format", "sklearn", "--model_name", MODEL,
            "--model_dir", str(sklearn_dir), "--http_port", str(kserve_port)], kserve_port, f"/v2/models/{MODEL}/ready"),
        "triton": Server("Triton", [
            python, "-m", "lab_helpers.runtime.triton", "tritonserver", f"--model-store={triton_repo}",
            f"--http-port={triton_port}", f"--grpc-port={free_port()}", f"--metrics-port={free_port()}"],
            triton_port, "/v2/health/ready"),
        "null": Server("null backend", [python, "-m", "lab_helpers.bench.runtimes", "serve-null",
                                        "--port", str(null_port)], null_port),
    }
    routes = [f"{HOSTS[name]}=http://127.0.0.1:{port}"
              for name, port in (("kserve-python", kserve_port), ("triton", triton_port), ("null", null_port))]
    servers["gateway"] = Server("gateway", [python, "-m", "lab_helpers.bench.runtimes", "serve-gateway",
                                            "--port", str(gateway_port), *routes], gateway_port)
    return servers


# --- helpers run as their own processes ----------------------------------------------------------

def null_response(size: int) -> bytes:
    """An HTTP/1.1 200 with a JSON body of `size` bytes (never less than the empty V2 answer, 34 bytes)."""
    empty = b'{"model_name":"null","outputs":[]}'
    padded = b',"padding":""'
    body = empty if size <= len(empty) else (
        empty[:-1] + padded[:-1] + b"x" * max(size - len(empty) - len(padded), 0) + b'"}')
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


def serve_null(port: int) -> None:
    """Answer every HTTP/1.1 request with 200 and a body of the size its `x-null-bytes` header asks, keep-alive:
    the cheapest possible backend (responses are built once per size)."""
    import functools

    import uvloop

    response = functools.cache(null_response)

    class Null(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport, self.buffer = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                head = self.buffer[:end]
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                total = end + 4 + (int(length.group(1)) if length else 0)
                if len(self.buffer) < total:
                    return
                self.buffer = self.buffer[total:]
                size = re.search(rb"(?i)" + NULL_BYTES_HEADER.encode() + rb":\s*(\d+)", head)
                self.transport.write(response(int(size.group(1)) if size else 0))  # type: ignore[attr-defined]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Null, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    uvloop.run(main())


def serve_gateway(port: int, routes: list[str]) -> None:
    """The local target's Gateway with one route per `host=url`, on `port`."""
    import uvloop

    from ..gateway import Backend, Gateway, Route, RouteTable, RouteTarget

    async def main() -> None:
        table = RouteTable([Route(host, [RouteTarget(MODEL, "bench", "1", [Backend(url)])])
                            for host, url in (route.split("=", 1) for route in routes)])
        gateway = Gateway(table)
        await gateway.start(port=port)
        await asyncio.Event().wait()

    uvloop.run(main())


# --- the measurement -------------------------------------------------------------------------------

SUBJECTS = (("kserve-python", "direct"), ("triton", "direct"), ("kserve-python", "gateway"),
            ("triton", "gateway"), ("null", "gateway"))


def triton_counts(url: str) -> tuple[int, int]:
    """(rows inferred, model executions) from Triton's statistics extension."""
    stats = httpx.get(f"{url}/v2/models/{MODEL}/stats", timeout=5).json()["model_stats"][0]
    return int(stats["inference_count"]), int(stats["execution_count"])


def measure(servers: dict[str, Server], rows: np.ndarray, batches: Sequence[int], clients: Sequence[int],
            seconds: int, workdir: Path) -> list[Cell]:
    """Every subject at every batch size and number of clients; subjects interleaved per setting."""
    urls = {name: server.url for name, server in servers.items()}
    cells = []
    for batch in batches:
        bodies = {runtime: request_body(runtime, rows[:batch]) for runtime in ("kserve-python", "triton")}
        bodies["null"] = bodies["triton"]
        triton_answer = httpx.post(f"{urls['triton']}/v2/models/{MODEL}/infer", content=bodies["triton"], timeout=10,
                                   headers={"Content-Type": "application/json"}).content
        scripts = {}
        for runtime, path in SUBJECTS:
            script = workdir / f"{runtime}-{path}-{batch}.lua"
            extra = {NULL_BYTES_HEADER: str(len(triton_answer))} if runtime == "null" else None
            script.write_text(wrk_script(bodies[runtime], HOSTS[runtime] if path == "gateway" else None, extra))
            scripts[runtime, path] = script
        for count in clients:
            for runtime, path in SUBJECTS:
                target = urls["gateway"] if path == "gateway" else urls[runtime]
                url = f"{target}/v2/models/{MODEL}/infer"
                on_path = [runtime, *(["gateway"] if path == "gateway" else [])]
                cpu_before = {name: servers[name].cpu_seconds() for name in on_path}
                counts_before = triton_counts(urls["triton"]) if runtime == "triton" else None
                figures, loadgen_cpu = run_wrk(url, scripts[runtime, path], count, seconds)
                answered = max(figures["requests"] - figures["errors"], 1)
                cpu = {name: (servers[name].cpu_seconds() - cpu_before[name]) / answered * 1e6 for name in on_path}
                cpu["loadgen"] = loadgen_cpu / answered * 1e6
                per_execution = None
                if counts_before is not None:
                    inferred, executed = (a - b for a, b in zip(triton_counts(urls["triton"]), counts_before))
                    per_execution = inferred / executed if executed else None
                cells.append(Cell(runtime, path, batch, count, int(figures["requests"]), int(figures["errors"]),
                                  figures["seconds"], figures["p50_ms"], figures["p99_ms"], cpu, per_execution))
    return cells


def warm_up(servers: dict[str, Server], rows: np.ndarray, workdir: Path) -> None:
    """Both runtimes must predict the same labels for the rows sent; then code paths and connections are warmed."""
    labels = {}
    for runtime in ("kserve-python", "triton"):
        response = httpx.post(f"{servers[runtime].url}/v2/models/{MODEL}/infer", timeout=10,
                              content=request_body(runtime, rows[:64]), headers={"Content-Type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"{runtime} answered {response.status_code}: {response.text[:300]}")
        integer = next(o for o in response.json()["outputs"] if o["datatype"].startswith("INT"))
        labels[runtime] = list(np.ravel(integer["data"]))
    if labels["kserve-python"] != labels["triton"]:
        raise RuntimeError(f"the runtimes disagree on the same rows: {labels}")
    measure(servers, rows, (1,), (8,), 1, workdir)


def table(cells: list[Cell]) -> pd.DataFrame:
    """One row per cell, for plots and the printed summary."""
    return pd.DataFrame([{
        "runtime": c.runtime, "path": c.path, "batch": c.batch, "clients": c.clients, "requests": c.requests,
        "errors": c.errors, "req_per_s": c.rps, "rows_per_s": c.rows_per_s, "p50_ms": c.p50_ms, "p99_ms": c.p99_ms,
        "server_cpu_us": c.cpu_us.get(c.runtime, float("nan")), "gateway_cpu_us": c.cpu_us.get("gateway", float("nan")),
        "loadgen_cpu_us": c.cpu_us["loadgen"], "rows_per_execution": c.rows_per_execution} for c in cells])


def ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Per batch and clients: Triton over kserve-python (direct, gateway) and Triton-through-gateway over the
    gateway's ceiling (the null backend through the same gateway)."""
    rps = frame.pivot_table(index=["batch", "clients"], columns=["runtime", "path"], values="req_per_s")
    out = pd.DataFrame({
        "triton/kserve direct": rps["triton", "direct"] / rps["kserve-python", "direct"],
        "triton/kserve gateway": rps["triton", "gateway"] / rps["kserve-python", "gateway"],
        "triton gateway/ceiling": rps["triton", "gateway"] / rps["null", "gateway"],
    })
    return out.reset_index()


def format_report(frame: pd.DataFrame) -> str:
    """The printed summary: every cell, the ratios side by side, the goals, and the headline line last."""
    lines = [f"{'batch':>5} {'clients':>7} {'runtime':<13} {'path':<7} {'req/s':>8} {'rows/s':>9} {'p50 ms':>7} "
             f"{'p99 ms':>7} {'errors':>6}  {'CPU us/request: server':>22} {'gateway':>7} {'wrk':>5}  "
             "Triton rows/execution"]
    for row in frame.itertuples():
        batching = f"{row.rows_per_execution:.1f}" if pd.notna(row.rows_per_execution) else ""
        server = "" if row.runtime == "null" else f"{row.server_cpu_us:.0f}"
        gateway = "" if row.path == "direct" else f"{row.gateway_cpu_us:.0f}"
        lines.append(f"{row.batch:>5} {row.clients:>7} {row.runtime:<13} {row.path:<7} {row.req_per_s:>8.0f} "
                     f"{row.rows_per_s:>9.0f} {row.p50_ms:>7.2f} {row.p99_ms:>7.2f} {row.errors:>6}  {server:>22} "
                     f"{gateway:>7} {row.loadgen_cpu_us:>5.0f}  {batching}")
    ratio = ratios(frame)
    lines.append("")
    lines.append(f"{'batch':>5} {'clients':>7}  {'triton/kserve direct':>20} {'triton/kserve gateway':>21} "
                 f"{'triton via gateway / gateway ceiling':>36}")
    for row in ratio.itertuples(index=False):
        lines.append(f"{row[0]:>5} {row[1]:>7}  {row[2]:>19.1f}x {row[3]:>20.1f}x {row[4]:>36.2f}")
    headline = ratio[(ratio["batch"] == 1) & (ratio["clients"] == 8)]
    if not headline.empty:
        direct, share = float(headline.iloc[0, 2]), float(headline.iloc[0, 4])
        lines.append("")
        lines.append(f"goal: Triton >= {GOAL_DIRECT_RATIO:.0f}x kserve-python at batch 1, 8 clients, direct: "
                     f"{'met' if direct >= GOAL_DIRECT_RATIO else 'NOT met'}; through the gateway within "
                     f"{GOAL_GATEWAY_SHARE} of the gateway's ceiling: {'met' if share >= GOAL_GATEWAY_SHARE else 'NOT met'}"
                     f" ({share:.2f})")
        lines.append(f"triton/kserve-python at batch 1, 8 clients, direct: {direct:.1f} x")
    return "\n".join(lines)


def compare_runtimes(batches: Sequence[int] = (1, 8, 64), clients: Sequence[int] = (1, 8, 32),
                     seconds: int = 3) -> pd.DataFrame:
    """Start the runtimes, the gateway and the null backend, measure every cell, stop everything."""
    for name, values in (("batches", batches), ("clients", clients)):
        if not values or min(values) < 1:
            raise ValueError(f"{name} must be positive integers, got {list(values)}")
    if max(batches) > 64:
        raise ValueError(f"batches: at most 64 rows per request (the Triton config's max_batch_size), got {max(batches)}")
    if seconds < 1:
        raise ValueError(f"seconds must be a whole number >= 1 (wrk's unit), got {seconds}")
    with tempfile.TemporaryDirectory(prefix="bench-runtimes-") as tmp:
        workdir = Path(tmp)
        sklearn_dir, triton_repo, rows = prepare_model(workdir)
        servers = start_servers(sklearn_dir, triton_repo)
        try:
            for name in ("kserve-python", "triton", "null"):
                servers[name].wait_ready()
            servers["gateway"].wait_ready(headers={"Host": HOSTS["null"]})
            warm_up(servers, rows, workdir)
            return table(measure(servers, rows, batches, clients, seconds, workdir))
        finally:
            for server in servers.values():
                server.stop()


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers bench runtimes", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    null = commands.add_parser("serve-null", help="(helper process) the null backend")
    null.add_argument("--port", type=int, required=True)
    gateway = commands.add_parser("serve-gateway", help="(helper process) the gateway, routes host=url")
    gateway.add_argument("--port", type=int, required=True)
    gateway.add_argument("routes", nargs="+")
    parser.add_argument("--batches", type=_int_list, default=[1, 8, 64], help="rows per request (default 1,8,64)")
    parser.add_argument("--clients", type=_int_list, default=[1, 8, 32], help="closed-loop clients (default 1,8,32)")
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per cell, whole seconds (default 3)")
    args = parser.parse_args(argv)
    if args.command == "serve-null":
        serve_null(args.port)
        return 0
    if args.command == "serve-gateway":
        serve_gateway(args.port, args.routes)
        return 0
    load_before = os.getloadavg()[0]
    try:
        frame = compare_runtimes(args.batches, args.clients, args.seconds)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"runtimes: digits MLP (64 inputs), kserve-python = kserve.ModelServer + scikit-learn, triton = tritonserver "
          f"(nvidia-pytriton 0.7.0) + Python backend + onnxruntime; wrk, {args.seconds:g} s per cell; "
          f"{os.cpu_count()} CPUs, 1-min load average {load_before:.2f} before the run")
    print(format_report(frame))
    return 1 if frame["errors"].sum() else 0


if __name__ == "__main__":
    sys.exit(main())
