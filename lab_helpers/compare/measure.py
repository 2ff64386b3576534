"""The timed part: every path at each number of closed-loop clients, with `wrk`, interleaved per setting.

The client is the C load generator of `bench runtimes` (a Python client's own CPU would cap every path near
the same figure on 2 cores). For each number of clients the paths run back to back, so a change in the
shared machine's load hits them alike. Beside path (b) a **null backend behind the lab's gateway** is
measured the same way: its throughput is the gateway's own ceiling (`bench runtimes`' subject "null"), so a
limit of the lab's Python gateway — which a cluster's Envoy does not have — is not read as one of KServe.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd

from ..bench.runtimes import HOSTS, NULL_BYTES_HEADER, run_wrk, wrk_script
from ..processes import free_port
from .models import MODEL
from .servers import StandaloneServer

CEILING = "gateway ceiling"
INFER_PATH = f"/v2/models/{MODEL}/infer"


@dataclass(frozen=True)
class Target:
    """One thing to load: where to send, with which Host header and extra headers."""

    name: str
    url: str
    host: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def start_ceiling() -> list[StandaloneServer]:
    """The null backend and a gateway routing to it (`bench runtimes`' helper processes), both ready."""
    null_port, gateway_port = free_port(), free_port()
    null = StandaloneServer("null-backend", [sys.executable, "-m", "lab_helpers.bench.runtimes", "serve-null",
                                             "--port", str(null_port)], null_port)
    gateway = StandaloneServer("bench-gateway", [
        sys.executable, "-m", "lab_helpers.bench.runtimes", "serve-gateway", "--port", str(gateway_port),
        f"{HOSTS['null']}=http://127.0.0.1:{null_port}"], gateway_port)
    null.wait_ready()
    gateway.wait_ready(headers={"Host": HOSTS["null"]})
    return [null, gateway]


def ceiling_target(gateway: StandaloneServer, answer_bytes: int) -> Target:
    """The null backend through the gateway, answering as many bytes as Triton does for the same request."""
    return Target(CEILING, gateway.url + INFER_PATH, HOSTS["null"], ((NULL_BYTES_HEADER, str(answer_bytes)),))


def answer_size(url: str, body: bytes, host: str | None = None) -> int:
    headers = {"Content-Type": "application/json", **({"Host": host} if host else {})}
    return len(httpx.post(url, content=body, headers=headers, timeout=10).content)


def load_points(targets: Sequence[Target], request: dict, clients: Sequence[int], seconds: int,
                workdir: Path) -> pd.DataFrame:
    """One row per target and number of clients: requests, errors, req_per_s, p50_ms, p99_ms."""
    if not clients or min(clients) < 1:
        raise ValueError(f"clients must be positive integers, got {list(clients)}")
    if seconds < 1:
        raise ValueError(f"seconds must be a whole number >= 1 (wrk's unit), got {seconds}")
    body = json.dumps(request).encode()
    scripts = {}
    for index, target in enumerate(targets):
        script = workdir / f"compare-{index}.lua"
        script.write_text(wrk_script(body, target.host, dict(target.headers)))
        scripts[target.name] = script
    rows = []
    for count in clients:
        for target in targets:
            figures, _ = run_wrk(target.url, scripts[target.name], count, seconds)
            answered = figures["requests"] - figures["errors"]
            rows.append({"path": target.name, "clients": count, "requests": int(figures["requests"]),
                         "errors": int(figures["errors"]), "req_per_s": answered / figures["seconds"],
                         "p50_ms": figures["p50_ms"], "p99_ms": figures["p99_ms"]})
    return pd.DataFrame(rows)
