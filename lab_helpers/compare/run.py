"""One run of notebook 12: hand the model over, start the three paths, check their answers, then time them.

Order matters for fairness on a 2-core machine: the three paths are started one after the other, so each
time to first ready is measured alone; the load runs interleave the paths per number of clients. Whatever
happens, every standalone process is stopped before returning (and recorded meanwhile, so `down` stops
them after an interrupted run); path (b), an InferenceService, stays for the notebook to delete.
"""
from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ..errors import LabError
from ..models.training import load_dataset
from ..processes import free_port
from . import triton_standalone
from .config_lines import user_config
from .kserve_path import KServeDeployment, deploy, serving_rss
from .measure import INFER_PATH, Target, answer_size, ceiling_target, load_points, start_ceiling
from .models import MODEL, check_equal, hand_over, request
from .servers import StandaloneServer, stop_all
from .table import Comparison

CHECK_ROWS = 64   # rows compared across the paths before anything is timed
FASTAPI = "standalone-fastapi"


@dataclass(frozen=True)
class Run:
    """What a notebook shows of one run: the comparison, the rows checked equal, the lines per file, path (b)."""

    comparison: Comparison
    rows_checked: int
    config_files: dict[str, dict[str, int]]
    kserve: KServeDeployment


def start_fastapi(model_dir: Path) -> StandaloneServer:
    port = free_port()
    return StandaloneServer(FASTAPI, [sys.executable, "-m", "lab_helpers.compare.fastapi_app", "--model-dir",
                                      str(model_dir), "--model-name", MODEL, "--port", str(port)], port, "/ready")


def _post(url: str, payload: dict[str, Any], host: str | None = None) -> dict[str, Any]:
    response = httpx.post(url, json=payload, headers={"Host": host} if host else None, timeout=30)
    if response.status_code != 200:
        raise LabError(f"POST {url} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def run_comparison(lab: Any, clients: Sequence[int] = (1, 8), seconds: int = 2, timeout: float = 300) -> Run:
    """The whole measured run on `lab`'s target for path (b); (a) and (c) on this machine either way."""
    rows = load_dataset(MODEL).X_test.to_numpy(np.float32)
    one_row = request(rows[:1])
    servers: list[StandaloneServer] = []
    with tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        workdir = Path(tmp)
        served = hand_over(lab.model_uri, workdir)
        try:
            ready = {}
            servers.append(triton_standalone.start(served.triton_repository, workdir))
            ready["triton"] = servers[-1].wait_ready()
            servers.append(start_fastapi(served.mlflow_dir))
            ready["fastapi"] = servers[-1].wait_ready()
            triton, fastapi = servers
            kserve = deploy(lab, served.triton_uri, one_row, timeout)
            ready["kserve"] = kserve.ready_s
            urls = {"triton": triton.url + INFER_PATH, "kserve": kserve.url + INFER_PATH,
                    "fastapi": fastapi.url + INFER_PATH}
            hosts = {"kserve": kserve.host}
            checked = request(rows[:CHECK_ROWS])
            rows_checked = check_equal({path: _post(url, checked, hosts.get(path)) for path, url in urls.items()})
            targets = [Target(path, url, hosts.get(path)) for path, url in urls.items()]
            if lab.target == "local":   # a cluster's ingress is not the lab's Python gateway: no ceiling to show
                servers += start_ceiling()
                targets.append(ceiling_target(servers[-1], answer_size(urls["triton"], json.dumps(one_row).encode())))
            points = load_points(targets, one_row, clients, seconds, workdir)
            rss = {"triton": float(triton.rss_bytes()), "fastapi": float(fastapi.rss_bytes()),
                   "kserve": serving_rss(lab)}
        finally:
            stop_all(servers)
        config_files = user_config(served.triton_repository)
    comparison = Comparison(points, ready, rss, {path: sum(files.values()) for path, files in config_files.items()})
    return Run(comparison, rows_checked, config_files, kserve)
