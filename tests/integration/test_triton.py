"""Triton for real: the nvidia-pytriton wheel's tritonserver, through the local image's entrypoint and as a pod."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import lab_helpers
from lab_helpers.errors import NotReady
from lab_helpers.inference import v2_tensor
from lab_helpers.models.onnx_export import checked_onnx
from lab_helpers.models.training import LAB_MODELS, train
from lab_helpers.models.triton_repository import write_repository
from lab_helpers.paths import manifests_dir
from lab_helpers.processes import free_port

pytestmark = pytest.mark.integration
TRITON = manifests_dir() / "triton"


@pytest.fixture(scope="module")
def digits():
    return train(next(spec for spec in LAB_MODELS if spec.name == "digits"))


@pytest.fixture(scope="module")
def repository(digits, tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("triton") / "repo"
    write_repository(checked_onnx(digits)[0], "digits", repo)
    return repo


def v2_request(rows: np.ndarray) -> dict:
    return v2_tensor("input", rows, "FP32")


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"tritonserver exited with {server.returncode}"
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"Triton not ready within {timeout} s")


def test_tritonserver_answers_a_v2_request_like_the_original_and_reports_its_batches(digits, repository, tmp_path):
    http, metrics = free_port(), free_port()
    log = open(tmp_path / "triton.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "lab_helpers.runtime.triton", "tritonserver",
                               f"--model-store={repository}", f"--http-port={http}", f"--grpc-port={free_port()}",
                               f"--metrics-port={metrics}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http}"
    try:
        wait_ready(url, server)
        rows = digits.dataset.X_test.to_numpy(np.float32)[:16]
        answer = httpx.post(f"{url}/v2/models/digits/infer", json=v2_request(rows), timeout=10).json()
        outputs = {o["name"]: o for o in answer["outputs"]}
        assert outputs["label"]["shape"] == [16, 1] and outputs["probabilities"]["shape"] == [16, 10]
        assert outputs["label"]["data"] == digits.estimator.predict(digits.dataset.X_test[:16]).tolist()
        stats = httpx.get(f"{url}/v2/models/digits/stats").json()["model_stats"][0]
        assert (stats["inference_count"], stats["execution_count"]) == (16, 1)
        exposition = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
        assert 'nv_inference_count{model="digits",version="1"} 16' in exposition
        bad = httpx.post(f"{url}/v2/models/digits/infer",
                         json={"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]})
        assert bad.status_code == 400 and "pixels" in bad.json()["error"]
    finally:
        server.terminate()
        server.wait(timeout=40)
        log.close()
    assert "ONNX served through the Python backend" in (tmp_path / "triton.log").read_text()


@pytest.fixture(scope="module")
def lab(local_home):
    lab = lab_helpers.connect("local")
    lab.apply(manifests_dir() / "flux")
    lab.wait_ready("HelmRelease", "kserve-runtime-configs", namespace="kserve", timeout=60)
    lab.apply(TRITON / "00-triton-servingruntime.yaml")
    return lab


def test_the_custom_runtime_serves_the_model_as_a_pod_ready_from_tritons_health(lab, digits, repository):
    lab.apply(TRITON / "10-digits-triton.yaml", {"DIGITS_ONNX_URI": repository.as_uri()})
    isvc = lab.wait_ready("InferenceService", "digits", timeout=120)
    assert isvc["status"]["servingRuntimeName"] == "triton-onnx"
    pod = next(p for p in lab.list("Pod") if p["metadata"]["name"].startswith("digits-predictor"))
    assert pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    rows = digits.dataset.X_test.to_numpy(np.float32)[:4]
    answer = lab.infer("digits", v2_request(rows))
    labels = next(o for o in answer["outputs"] if o["name"] == "label")["data"]
    assert labels == digits.estimator.predict(digits.dataset.X_test[:4]).tolist()
    lab.delete("InferenceService", "digits")


def test_a_broken_config_is_model_load_failed_with_tritons_message_and_the_runbook(lab, repository, tmp_path):
    broken = shutil.copytree(repository, tmp_path / "broken")
    config = broken / "digits" / "config.pbtxt"
    config.write_text(config.read_text().replace("dims: [ 64 ]", "dims: [ 64 "))
    lab.apply(TRITON / "10-digits-triton.yaml", {"DIGITS_ONNX_URI": broken.as_uri()})
    with pytest.raises(NotReady) as info:
        lab.wait_ready("InferenceService", "digits", timeout=45)
    diagnosis = info.value.diagnosis
    assert diagnosis.reason == "ModelLoadFailed"
    assert "tritonserver exited with code 1: Poll failed for model directory 'digits': failed to read text proto" \
        in diagnosis.message
    assert diagnosis.runbook == "runbooks/runtime-not-loading-model.md"
    assert "runbook: runbooks/runtime-not-loading-model.md" in str(info.value)
    lab.delete("InferenceService", "digits")


def test_an_onnx_model_without_a_runtime_name_gets_kserve_tritonserver_and_runs_on_the_same_image(lab, repository):
    isvc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "digits", "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
            "spec": {"predictor": {"model": {"modelFormat": {"name": "onnx"}, "protocolVersion": "v2",
                                             "storageUri": repository.as_uri()}}}}
    lab.apply(isvc)
    ready = lab.wait_ready("InferenceService", "digits", timeout=120)
    assert ready["status"]["clusterServingRuntimeName"] == "kserve-tritonserver"
    lab.delete("InferenceService", "digits")
