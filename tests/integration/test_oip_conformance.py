"""Protocol conformance: a property-based fuzz of the gateway, in front of a real runtime, against the Open
Inference Protocol REST spec (KServe's ``open_inference_rest.yaml``).

The spec is read from the reference folder beside the repo and adapted in memory, never copied:

- its path templates ``${MODEL_NAME}`` / ``${MODEL_VERSION}`` become OpenAPI's ``{MODEL_NAME}`` / ``{MODEL_VERSION}``;
- the model name is pinned to the served model, so requests reach it instead of all being 404;
- the spec defines only versioned model paths; KServe serves the unversioned ones too (``/v2/models/NAME``,
  ``.../ready``, ``.../infer``), which clients use, so they are added with the same definitions;
- server metadata is written ``/v2/`` in the spec; KServe serves it at ``/v2``.

Deviations that are KServe's own, and therefore expected here:

- every versioned path answers **501** "Model versioning not supported yet." (kserve ``V2Endpoints``);
- bad input gets status codes the spec does not list (404 for an unknown model, 422 for a body that is
  not an inference request) with the spec's error shape ``{"error": ...}``.

Checked for everything else: no 5xx at all, every 200 valid against the spec's response schema,
every 4xx a JSON ``{"error": ...}``, and the model still served afterwards.
"""
from __future__ import annotations

import asyncio
import copy
import re
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab_helpers.gateway import Backend, Gateway, Route, RouteTable, RouteTarget
from lab_helpers.paths import REPO_ROOT, shared_dir
from lab_helpers.processes import free_port
from tests.conftest import v2_payload
from tests.integration.test_runtime_server import Runtime, runtime_argv, wait_serving

pytestmark = pytest.mark.integration

MODEL = "iris"
HOST = "iris-lab.example.com"
CASES = 150  # bounded: about 20 s on two shared cores
VERSIONED = re.compile(r"^/v2/models/[^/]+/versions/")


def served_spec(spec: dict[str, Any], model: str) -> dict[str, Any]:
    """The published spec as KServe serves it for one model (see the module docstring)."""
    spec = copy.deepcopy(spec)
    paths: dict[str, Any] = {}
    for template, item in spec["paths"].items():
        path = template.replace("${", "{")
        for parameter in item.get("parameters", []):
            if parameter["name"] == "MODEL_NAME":
                parameter["schema"] = {"type": "string", "enum": [model]}
        path = "/v2" if path == "/v2/" else path
        paths[path] = item
        if "/versions/{MODEL_VERSION}" in path:
            unversioned = copy.deepcopy(item)
            unversioned["parameters"] = [p for p in unversioned["parameters"] if p["name"] != "MODEL_VERSION"]
            for operation in unversioned.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    operation["operationId"] += "-unversioned"
            paths[path.replace("/versions/{MODEL_VERSION}", "")] = unversioned
    spec["paths"] = paths
    return spec


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    shared = shared_dir()
    spec_file = shared / "protocol" / "open_inference_rest.yaml" if shared else None
    if spec_file is None or not spec_file.is_file():
        pytest.skip("the Open Inference Protocol spec (protocol/open_inference_rest.yaml) is not laid beside the repo")
    return served_spec(yaml.safe_load(spec_file.read_text()), MODEL)


@pytest.fixture(scope="module")
def runtime(iris_mlflow_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    port, log = free_port(), tmp_path_factory.mktemp("logs") / "iris.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(runtime_argv(MODEL, iris_mlflow_dir, "mlflow", port), cwd=REPO_ROOT,
                                   stdout=out, stderr=subprocess.STDOUT)
    served = Runtime(MODEL, process, f"http://127.0.0.1:{port}", log)
    try:
        wait_serving(served)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def gateway_url(runtime: Runtime) -> Iterator[str]:
    """The gateway on its own event loop in a thread, routing HOST to the runtime."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    table = RouteTable([Route(HOST, [RouteTarget("iris-predictor", "lab", "r1", [Backend(runtime.base)])])])
    gateway = Gateway(table)
    port = asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(timeout=30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(gateway.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


def test_the_gateway_in_front_of_kserve_conforms_to_the_open_inference_protocol(spec, gateway_url, runtime):
    import schemathesis
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v2/models/{MODEL_NAME}/infer", "/v2/models/{MODEL_NAME}/ready",
                                              "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer", "/v2"}
    answered: dict[tuple[str, int], int] = {}

    @settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=st.one_of(*(op.as_strategy() for op in operations)))
    def exchange(case) -> None:
        response = case.call(base_url=gateway_url, headers={"Host": HOST}, timeout=30)
        path = case.formatted_path
        key = (case.operation.label, response.status_code)
        answered[key] = answered.get(key, 0) + 1
        if response.status_code == 501:
            assert VERSIONED.match(path), f"501 off a versioned path: {case.as_curl_command()}"
            return
        assert response.status_code < 500, f"{response.status_code} {response.text[:300]}: {case.as_curl_command()}"
        if response.status_code == 200:
            case.validate_response(response, checks=[response_schema_conformance])
        else:
            assert set(response.json()) == {"error"}, f"{response.status_code} {response.text[:300]}"

    exchange()
    for (label, status), count in sorted(answered.items()):
        print(f"{count:4d} x {status} {label}")
    assert any(status == 200 for _, status in answered), "the fuzz never reached a served answer"
    ready = httpx.get(f"{gateway_url}/v2/models/{MODEL}/ready", headers={"Host": HOST}, timeout=10)
    assert ready.status_code == 200 and runtime.process.poll() is None
    infer = next(op for op in operations if op.path == "/v2/models/{MODEL_NAME}/infer")
    valid = infer.Case(path_parameters={"MODEL_NAME": MODEL}, body=v2_payload([[5.1, 3.5, 1.4, 0.2]]),
                       media_type="application/json")
    answer = valid.call(base_url=gateway_url, headers={"Host": HOST}, timeout=30)
    assert answer.status_code == 200 and answer.json()["outputs"][0]["data"] == [0]
    valid.validate_response(answer, checks=[response_schema_conformance])
