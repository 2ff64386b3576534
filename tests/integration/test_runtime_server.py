"""The runtime process of a local pod, for real: kserve.ModelServer serving an MLflow and a joblib iris model.

Checks the wire contract (MLServer's V2 columns for MLflow, kserve-sklearnserver's V1/V2), the OIP
schema of the answers, that malformed requests get a 4xx JSON error and leave the process serving,
and that a bad model dir exits 1 with one line naming the dir and the cause (ModelLoadFailed).
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import numpy as np
import pandas as pd
import psutil
import pytest
import yaml

from lab_helpers.paths import REPO_ROOT, shared_dir
from lab_helpers.processes import free_port

pytestmark = pytest.mark.integration

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
READY_TIMEOUT_S = 120.0  # two cores shared with other test runs: a cold start can take a while


@dataclass
class Runtime:
    name: str
    process: subprocess.Popen
    base: str
    log: Path

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", timeout=30, **kwargs)

    def is_serving(self) -> bool:
        return (self.process.poll() is None
                and httpx.get(f"{self.base}/v2/health/ready", timeout=10).status_code == 200
                and httpx.get(f"{self.base}/v2/models/{self.name}/ready", timeout=10).status_code == 200)


def runtime_argv(name: str, model_dir: Path, model_format: str, port: int) -> list[str]:
    return [sys.executable, "-m", "lab_helpers.runtime.server", "--model-name", name, "--model-dir", str(model_dir),
            "--model-format", model_format, "--http-port", str(port)]


def wait_serving(runtime: Runtime) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if runtime.process.poll() is not None:
            pytest.fail(f"runtime {runtime.name} exited {runtime.process.returncode}: {runtime.log.read_text()[-2000:]}")
        try:
            if runtime.is_serving():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"runtime {runtime.name} not ready after {READY_TIMEOUT_S}s: {runtime.log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return data.data.set_axis(FEATURES, axis=1), data.target.to_numpy()


@pytest.fixture(scope="module")
def classifier(iris: tuple[pd.DataFrame, np.ndarray]) -> Any:
    from sklearn.linear_model import LogisticRegression

    features, target = iris
    return LogisticRegression(max_iter=500).fit(features, target)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory, iris: tuple[pd.DataFrame, np.ndarray],
               classifier: Any) -> dict[str, Path]:
    """The two model dirs as a storage initializer leaves them: a joblib file, an MLflow model dir."""
    import joblib
    import mlflow.sklearn
    from mlflow.models import infer_signature

    root = tmp_path_factory.mktemp("models")
    (root / "sklearn").mkdir()
    joblib.dump(classifier, root / "sklearn" / "model.joblib")
    features, _ = iris
    # mlflow 3 saves sklearn models with skops by default: the runtime process must load that cold.
    mlflow.sklearn.save_model(classifier, root / "mlflow",
                              signature=infer_signature(features, classifier.predict(features)))
    assert "serialization_format: skops" in (root / "mlflow" / "MLmodel").read_text()
    return {"sklearn": root / "sklearn", "mlflow": root / "mlflow"}


@pytest.fixture(scope="module")
def runtimes(model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Runtime]]:
    """Both runtime processes, started together (each cold start is mostly imports)."""
    logs = tmp_path_factory.mktemp("logs")
    started = {}
    for model_format, name in (("mlflow", "iris-mlflow"), ("sklearn", "iris-sklearn")):
        port, log = free_port(), logs / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(runtime_argv(name, model_dirs[model_format], model_format, port),
                                       cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
        started[model_format] = Runtime(name, process, f"http://127.0.0.1:{port}", log)
    try:
        for runtime in started.values():
            wait_serving(runtime)
        yield started
    finally:
        for runtime in started.values():
            runtime.process.terminate()
        for runtime in started.values():
            try:
                runtime.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                runtime.process.kill()
                runtime.process.wait()


@pytest.fixture(scope="module")
def oip() -> Callable[[str, Any], None]:
    """validate(schema_name, document) against the Open Inference Protocol REST spec in shared/."""
    import jsonschema

    shared = shared_dir()
    spec_file = shared / "protocol" / "open_inference_rest.yaml" if shared else None
    if spec_file is None or not spec_file.is_file():
        pytest.skip("shared/protocol/open_inference_rest.yaml is not laid beside the repo")
    components = yaml.safe_load(spec_file.read_text())["components"]

    def validate(schema_name: str, document: Any) -> None:
        jsonschema.validate(document, {"$ref": f"#/components/schemas/{schema_name}", "components": components})

    return validate


def column_inputs(rows: list[list[float]], shape: Callable[[int], list[int]] = lambda n: [n]) -> list[dict]:
    return [{"name": name, "shape": shape(len(rows)), "datatype": "FP64", "data": [row[i] for row in rows]}
            for i, name in enumerate(FEATURES)]


@pytest.mark.parametrize("shape", [lambda n: [n], lambda n: [n, 1]], ids=["[N]", "[N,1]"])
def test_mlflow_v2_answers_like_mlserver(runtimes: dict[str, Runtime], oip: Callable, classifier: Any,
                                         shape: Callable[[int], list[int]]) -> None:
    request = {"id": "req-1", "inputs": column_inputs(ROWS, shape)}
    oip("inference_request", request)
    response = runtimes["mlflow"].post("/v2/models/iris-mlflow/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    oip("inference_response", body)
    expected = classifier.predict(pd.DataFrame(ROWS, columns=FEATURES)).tolist()
    assert body["model_name"] == "iris-mlflow" and body["id"] == "req-1"
    assert body["outputs"] == [{"name": "output-1", "shape": [len(ROWS), 1], "datatype": "INT64",
                                "parameters": {"content_type": "np"}, "data": expected}]


def test_mlflow_metadata_lists_one_input_per_column(runtimes: dict[str, Runtime], oip: Callable) -> None:
    body = httpx.get(f"{runtimes['mlflow'].base}/v2/models/iris-mlflow", timeout=10).json()
    oip("metadata_model_response", body)
    assert body["inputs"] == [{"name": name, "datatype": "FP64", "shape": [-1, 1]} for name in FEATURES]


@pytest.mark.parametrize(("request_body", "named"), [
    ({"inputs": column_inputs(ROWS)[:3]}, "missing: ['petal_width']"),
    ({"inputs": [*column_inputs(ROWS), {"name": "colour", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]}]},
     "unexpected: ['colour']"),
    ({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROWS[0]}]}, "unexpected: ['input-0']"),
], ids=["missing", "extra", "single-tensor"])
def test_mlflow_names_missing_and_extra_columns(runtimes: dict[str, Runtime], request_body: dict, named: str) -> None:
    response = runtimes["mlflow"].post("/v2/models/iris-mlflow/infer", json=request_body)
    assert response.status_code == 400
    assert named in response.json()["error"]


def test_mlflow_refuses_v1_saying_it_speaks_v2(runtimes: dict[str, Runtime]) -> None:
    response = runtimes["mlflow"].post("/v1/models/iris-mlflow:predict", json={"instances": ROWS})
    assert response.status_code == 400
    assert "speaks only the V2 protocol" in response.json()["error"]


def test_sklearn_v1_predicts(runtimes: dict[str, Runtime], classifier: Any) -> None:
    response = runtimes["sklearn"].post("/v1/models/iris-sklearn:predict", json={"instances": ROWS})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": classifier.predict(pd.DataFrame(ROWS, columns=FEATURES)).tolist()}


def test_sklearn_v2_single_tensor_like_kserve_sklearnserver(runtimes: dict[str, Runtime], oip: Callable,
                                                            classifier: Any) -> None:
    request = {"inputs": [{"name": "input-0", "shape": [len(ROWS), 4], "datatype": "FP64", "data": ROWS}]}
    oip("inference_request", request)
    response = runtimes["sklearn"].post("/v2/models/iris-sklearn/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    oip("inference_response", body)
    expected = classifier.predict(pd.DataFrame(ROWS, columns=FEATURES)).tolist()
    assert body["outputs"] == [{"name": "output-0", "shape": [len(ROWS)], "datatype": "INT64", "data": expected}]


def v2_input(**overrides: Any) -> dict:
    return {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROWS[0], **overrides}]}


JSON = {"content-type": "application/json"}
MALFORMED = {  # label: (path template, request kwargs); {v1} / {v2} stand for the model's routes
    "not-json-v2": ("{v2}", {"content": b"{not json", "headers": JSON}),
    "not-json-v1": ("{v1}", {"content": b"{not json", "headers": JSON}),
    "deeply-nested-json": ("{v2}", {"content": b"[" * 100_000 + b"]" * 100_000, "headers": JSON}),
    "no-inputs-field": ("{v2}", {"json": {"instances": ROWS}}),
    "input-missing-fields": ("{v2}", {"json": {"inputs": [{"name": "sepal_length"}]}}),
    "inputs-not-a-list": ("{v2}", {"json": {"inputs": {"name": "x"}}}),
    "wrong-shape": ("{v2}", {"json": v2_input(shape=[3, 4])}),
    "unknown-datatype": ("{v2}", {"json": v2_input(datatype="FLOAT")}),
    "strings-as-numbers": ("{v2}", {"json": v2_input(data=["a", "b", "c", "d"])}),
    "int8-overflow": ("{v2}", {"json": v2_input(datatype="INT8", data=[500, 3, 1, 0])}),
    "fp16-as-json": ("{v2}", {"json": v2_input(datatype="FP16")}),
    "v1-without-instances": ("{v1}", {"json": {"rows": ROWS}}),
    "v1-instances-not-a-list": ("{v1}", {"json": {"instances": 3}}),
    "v1-wrong-width": ("{v1}", {"json": {"instances": [[1.0, 2.0, 3.0]]}}),
    "v1-ragged": ("{v1}", {"json": {"instances": [[1.0, 2.0, 3.0, 4.0], [1.0]]}}),
    "v1-text-body": ("{v1}", {"content": b"hello", "headers": {"content-type": "text/plain"}}),
    "get-on-infer": ("GET {v2}", {}),
    "unknown-model": ("/v2/models/no-such-model/infer", {"json": v2_input()}),
}


@pytest.mark.parametrize("model_format", ["mlflow", "sklearn"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_gets_4xx_json_and_the_runtime_keeps_serving(
        runtimes: dict[str, Runtime], oip: Callable, model_format: str, case: str) -> None:
    runtime = runtimes[model_format]
    template, kwargs = MALFORMED[case]
    method, _, template = template.rpartition(" ")
    path = template.format(v1=f"/v1/models/{runtime.name}:predict", v2=f"/v2/models/{runtime.name}/infer")
    response = httpx.request(method or "POST", f"{runtime.base}{path}", timeout=30, **kwargs)
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    oip("inference_error_response", response.json())
    assert response.json()["error"]
    assert runtime.is_serving()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_cap_gets_413(runtimes: dict[str, Runtime], chunked: bool) -> None:
    runtime = runtimes["sklearn"]
    body = b" " * (10 * 2**20 + 1)
    content = iter([body[: 2**20], body[2**20:]]) if chunked else body
    response = runtime.post(f"/v2/models/{runtime.name}/infer", content=content, headers=JSON)
    assert response.status_code == 413
    assert "larger than 10485760 bytes" in response.json()["error"]
    assert runtime.is_serving()


def predict_count(runtime: Runtime) -> float:
    metrics = httpx.get(f"{runtime.base}/metrics", timeout=10).text
    found = re.search(rf'^request_predict_seconds_count{{model_name="{runtime.name}"}} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("model_format", ["mlflow", "sklearn"])
def test_metrics_count_each_prediction(runtimes: dict[str, Runtime], model_format: str) -> None:
    runtime = runtimes[model_format]
    before = predict_count(runtime)
    response = runtime.post(f"/v2/models/{runtime.name}/infer", json={"inputs": column_inputs(ROWS)}
                            if model_format == "mlflow" else v2_input())
    assert response.status_code == 200, response.text
    assert predict_count(runtime) == before + 1


def test_runtimes_listen_on_loopback_only(runtimes: dict[str, Runtime]) -> None:
    for runtime in runtimes.values():
        listening = [conn.laddr for conn in psutil.net_connections(kind="inet")
                     if conn.pid == runtime.process.pid and conn.status == psutil.CONN_LISTEN]
        assert listening and {address.ip for address in listening} == {"127.0.0.1"}


@pytest.mark.parametrize(("model_format", "layout", "cause"), [
    ("sklearn", {}, "fail to locate model file"),
    ("sklearn", {"a.pkl": "sklearn", "b.joblib": "sklearn"}, "More than one model file is detected"),
    ("sklearn", {"model.joblib": "text"}, "cannot unpickle"),
    ("mlflow", {"model.joblib": "sklearn"}, "no MLmodel file in"),
])
def test_bad_model_dir_exits_1_with_one_line_naming_dir_and_cause(
        tmp_path: Path, model_dirs: dict[str, Path], model_format: str, layout: dict[str, str], cause: str) -> None:
    bad_dir = tmp_path / "mnt-models"
    bad_dir.mkdir()
    for name, content in layout.items():
        source = model_dirs["sklearn"] / "model.joblib"
        (bad_dir / name).write_bytes(source.read_bytes() if content == "sklearn" else b"not a pickle")
    done = subprocess.run(runtime_argv("broken", bad_dir, model_format, free_port()),
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=READY_TIMEOUT_S)
    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"failed to load {model_format} model 'broken' from {bad_dir}: ")
    assert cause in last_line


def infer_request(columns: dict[str, list], datatype: str = "FP64") -> Any:
    from kserve.protocol.infer_type import InferInput, InferRequest

    return InferRequest(model_name="m", request_id="r", infer_inputs=[
        InferInput(name=name, shape=[len(values)], datatype=datatype, data=values) for name, values in columns.items()])


def test_mlflow_dataframe_prediction_gives_one_output_per_column(tmp_path: Path) -> None:
    import mlflow.pyfunc

    from lab_helpers.runtime.models import MLflowModel

    class LabelAndScore(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
            return pd.DataFrame({"label": np.where(model_input["petal_length"] > 2.5, "versicolor", "setosa"),
                                 "score": model_input["petal_length"] * 2})

    mlflow.pyfunc.save_model(tmp_path / "frame", python_model=LabelAndScore())  # no signature: inputs as sent
    model = MLflowModel("frame", tmp_path / "frame")
    model.load()
    response, _ = model.predict(infer_request({"petal_length": [1.4, 5.2]})).to_rest()
    assert response["outputs"] == [
        {"name": "label", "shape": [2, 1], "datatype": "BYTES", "parameters": {"content_type": "str"},
         "data": ["setosa", "versicolor"]},
        {"name": "score", "shape": [2, 1], "datatype": "FP64", "data": [2.8, 10.4]}]


def test_mlflow_string_labels_come_back_as_bytes(tmp_path: Path, iris: tuple[pd.DataFrame, np.ndarray]) -> None:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    from lab_helpers.runtime.models import MLflowModel

    features, target = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[target]
    mlflow.sklearn.save_model(LogisticRegression(max_iter=500).fit(features, labels), tmp_path / "named")
    model = MLflowModel("named", tmp_path / "named")
    model.load()
    response, _ = model.predict(infer_request(dict(zip(FEATURES, np.array(ROWS).T.tolist())))).to_rest()
    assert response["outputs"] == [{"name": "output-1", "shape": [3, 1], "datatype": "BYTES",
                                    "parameters": {"content_type": "np"}, "data": ["setosa", "virginica", "versicolor"]}]
