"""The transformer -> predictor call path with real processes, and a transformer whose predictor is gone.

A `kserve.ModelServer` predictor (the lab's runtime, serving an MLflow iris model as kserve-mlserver
does) and the lab's transformer process in front of it, told the predictor's host by
``--predictor_host`` as KServe tells it: raw millimetre records in, labels out. Then a transformer
whose predictor host refuses connections answers 502 with a JSON error naming that host, fast.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from lab_helpers.processes import free_port
from lab_helpers.runtime.transformer_features import raw_record

pytestmark = pytest.mark.integration

FEATURES = "sepal_length,sepal_width,petal_length,petal_width"
LABELS = "setosa,versicolor,virginica"
READY_TIMEOUT_S = 120.0  # two shared cores: a cold start can take a while
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}


def start(argv: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", *argv], stdout=out, stderr=subprocess.STDOUT)


def wait_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url}: process exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} not ready after {READY_TIMEOUT_S}s: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def serving(argv: list[str], ready_path: str, log: Path) -> Iterator[str]:
    """Run `python -m <argv>` with --http_port on a free port until its `ready_path` answers 200; yield its URL."""
    port = free_port()
    process = start([*argv, "--http_port", str(port)], log)
    try:
        wait_ready(process, f"http://127.0.0.1:{port}{ready_path}", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def transformer(log_dir: Path, predictor_host: str) -> Iterator[str]:
    return serving(["lab_helpers.runtime.transformer", "--model_name", "iris", "--predictor_host", predictor_host,
                    "--predictor_protocol", "v2", "--features", FEATURES, "--labels", LABELS],
                   "/v2/models/iris/ready", log_dir / f"transformer-{predictor_host.replace(':', '-')}.log")


@pytest.fixture(scope="module")
def predictor_host(iris_mlflow_dir: Path, tmp_path_factory) -> Iterator[str]:
    for url in serving(["lab_helpers.runtime.server", "--model_name", "iris", "--model_dir", str(iris_mlflow_dir),
                        "--model-format", "mlflow"], "/v2/models/iris/ready",
                       tmp_path_factory.mktemp("predictor") / "predictor.log"):
        yield url.removeprefix("http://")


@pytest.fixture(scope="module")
def transformer_url(predictor_host: str, tmp_path_factory) -> Iterator[str]:
    yield from transformer(tmp_path_factory.mktemp("transformer"), predictor_host)


def test_raw_measurements_in_labels_out_through_the_predictor(transformer_url: str):
    body = {"instances": [raw_record(SETOSA), raw_record(VIRGINICA)]}
    response = httpx.post(f"{transformer_url}/v1/models/iris:predict", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["setosa", "virginica"]}


def test_a_bad_record_is_a_400_from_the_transformer_never_reaching_the_predictor(transformer_url: str):
    response = httpx.post(f"{transformer_url}/v1/models/iris:predict",
                          json={"instances": [{"sepal_length_mm": 51}]}, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"] == ("instances[0]: missing sepal_width_mm, petal_length_mm, petal_width_mm")


def test_a_transformer_whose_predictor_is_unreachable_answers_502_json_at_once(tmp_path: Path):
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    for url in transformer(tmp_path, closed):
        started = time.monotonic()
        response = httpx.post(f"{url}/v1/models/iris:predict", json={"instances": [raw_record(SETOSA)]}, timeout=30)
        elapsed = time.monotonic() - started
        assert response.status_code == 502
        assert response.json()["error"].startswith(f"predictor {closed} could not be reached: ConnectError")
        assert elapsed < 10  # refused, not hung until the predictor deadline
