"""The local target with real processes: daemon, Flux install, KServe reconcile, runtimes, gateway."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import httpx
import psutil
import pytest

import lab_helpers
from lab_helpers.errors import ManifestError, NotReady
from lab_helpers.inference import curl_command, infer_path
from lab_helpers.local.control import running
from lab_helpers.local.version import code_version
from lab_helpers.paths import manifests_dir
from tests.conftest import v2_payload

pytestmark = pytest.mark.integration
SETOSA = [5.1, 3.5, 1.4, 0.2]


def isvc(name: str, model: dict, **predictor) -> dict:
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
            "spec": {"predictor": {"model": model, **predictor}}}


def mlflow_model(uri: str, **extra) -> dict:
    return {"modelFormat": {"name": "mlflow"}, "protocolVersion": "v2", "storageUri": uri, **extra}


@pytest.fixture(scope="module")
def lab(local_home):
    lab = lab_helpers.connect("local")
    # Before the KServe chart is installed the API has no InferenceService kind, as on a bare cluster.
    with pytest.raises(ManifestError, match='no matches for kind "InferenceService"'):
        lab.apply(isvc("early", mlflow_model("file:///nowhere")))
    lab.apply(manifests_dir() / "flux")
    lab.wait_ready("HelmRelease", "kserve-runtime-configs", namespace="kserve", timeout=30)
    return lab


@pytest.fixture(scope="module")
def iris(lab, iris_mlflow_dir):
    lab.apply(manifests_dir() / "serving" / "iris-inferenceservice.yaml",
              {"IRIS_STORAGE_URI": iris_mlflow_dir.as_uri()})
    return lab.wait_ready("InferenceService", "iris", timeout=90)


def test_flux_installs_kserve_and_its_runtimes(lab):
    crds = {c["metadata"]["name"] for c in lab.list("CustomResourceDefinition")}
    assert "inferenceservices.serving.kserve.io" in crds
    runtimes = {r["metadata"]["name"] for r in lab.list("ClusterServingRuntime")}
    assert {"kserve-mlserver", "kserve-sklearnserver", "kserve-tritonserver"} <= runtimes


def test_deploy_ready_infer(lab, iris):
    status = iris["status"]
    assert status["url"] == "http://iris-lab.example.com"
    assert status["clusterServingRuntimeName"] == "kserve-mlserver"
    assert status["modelStatus"]["states"]["activeModelState"] == "Loaded"
    assert {c["type"] for c in status["conditions"]} >= {"PredictorReady", "IngressReady", "Ready"}
    graph = {(o["kind"], o["metadata"]["name"]) for kind in ("Deployment", "Service", "Ingress")
             for o in lab.list(kind)}
    assert {("Deployment", "iris-predictor"), ("Service", "iris-predictor"), ("Ingress", "iris")} <= graph
    answer = lab.infer("iris", v2_payload([SETOSA]))
    assert answer["model_name"] == "iris" and answer["outputs"][0]["data"] == [0]


def test_curl_style_request_through_the_gateway_by_host_header(lab, iris):
    base, host = lab.endpoint("iris")
    response = httpx.post(f"{base}/v2/models/iris/infer", json=v2_payload([SETOSA]), headers={"Host": host})
    assert response.status_code == 200
    unknown = httpx.post(f"{base}/v2/models/iris/infer", json={}, headers={"Host": "nope-lab.example.com"})
    assert unknown.status_code == 404 and "no route" in unknown.json()["error"]


@pytest.mark.parametrize("body, expect", [
    (b"{not json", 400),
    (json.dumps({"inputs": [{"name": "sepal_length", "shape": [2], "datatype": "FP64", "data": [1.0]}]}).encode(), 400),
    (json.dumps({"inputs": [{"name": "sepal_length", "shape": [1], "datatype": "NOPE", "data": [1]}]}).encode(), 400),
    (b"[" + b"1," * (11 * 2**20 // 2) + b"1]", 413),
])
def test_malformed_payloads_get_4xx_json_and_the_runtime_stays_up(lab, iris, body, expect):
    base, host = lab.endpoint("iris")
    response = httpx.post(f"{base}/v2/models/iris/infer", content=body,
                          headers={"Host": host, "Content-Type": "application/json"}, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    assert "error" in response.json()
    assert lab.infer("iris", v2_payload([SETOSA]))["outputs"][0]["data"] == [0]


def _failure(lab, name: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failure = (lab.get("InferenceService", name).get("status") or {}).get("modelStatus", {}).get("lastFailureInfo")
        if failure:
            return failure
        time.sleep(0.3)
    raise AssertionError(f"{name}: no lastFailureInfo within {timeout} s")


@pytest.mark.parametrize("name, model, reason, message", [
    ("bad-uri", mlflow_model("file:///does/not/exist"), "ModelLoadFailed", "does not exist"),
    ("bad-runtime", mlflow_model("file:///x", runtime="kserve-nosuchserver"), "RuntimeNotRecognized",
     "Waiting for runtime"),
    ("no-protocol", {"modelFormat": {"name": "mlflow"}, "storageUri": "file:///x"}, "NoSupportingRuntime",
     "No runtime found"),
    ("bad-format", {"modelFormat": {"name": "paddle"}, "storageUri": "file:///x"}, "NoSupportingRuntime",
     "No runtime found"),
])
def test_faults_surface_kserve_reasons(lab, name, model, reason, message):
    lab.apply(isvc(name, model))
    failure = _failure(lab, name)
    assert failure["reason"] == reason and message in failure["message"]
    lab.delete("InferenceService", name)


def test_memory_limit_below_need_fails_the_pod_and_status_says_so(lab, iris_mlflow_dir):
    small = {"limits": {"memory": "40Mi"}, "requests": {"memory": "40Mi"}}
    lab.apply(isvc("tiny", mlflow_model(iris_mlflow_dir.as_uri(), resources=small)))
    failure = _failure(lab, "tiny", timeout=60)
    assert failure["reason"] == "ModelLoadFailed" and failure["exitCode"] == 137 and "OOMKilled" in failure["message"]
    with pytest.raises(NotReady) as info:
        lab.wait_ready("InferenceService", "tiny", timeout=1)
    diagnosis = info.value.diagnosis
    assert diagnosis.runbook == "runbooks/oom-killed.md"
    assert any(e["reason"] == "BackOff" for e in diagnosis.events)
    lab.delete("InferenceService", "tiny")


def test_invalid_multi_document_apply_applies_nothing(lab):
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first"}, "data": {"a": "1"}}
    bad_name = isvc("Second_Model", mlflow_model("file:///x"))  # not a DNS-1035 label
    with pytest.raises(ManifestError) as info:
        lab.apply([good, bad_name])
    assert "InferenceService Second_Model" in info.value.document and info.value.path == "metadata.name"
    bad_type = isvc("second", {"modelFormat": {"name": 7}, "storageUri": "file:///x"})  # the CRD's field types
    with pytest.raises(ManifestError) as info:
        lab.apply([good, bad_type])
    assert "InferenceService second" in info.value.document and "modelFormat.name" in info.value.path
    assert [c["metadata"]["name"] for c in lab.list("ConfigMap")] == []


def test_killed_runtime_is_restarted_with_an_event(lab, iris):
    pod = next(p for p in lab.list("Pod") if p["metadata"]["name"].startswith("iris-predictor"))
    pid = pod["status"]["lab"]["containers"]["kserve-container"]["pid"]
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pod = lab.get("Pod", pod["metadata"]["name"])
        status = pod["status"]["containerStatuses"][0]
        if status["restartCount"] >= 1 and status["ready"]:
            break
        time.sleep(0.3)
    assert status["restartCount"] >= 1 and status["ready"]
    assert status["lastState"]["terminated"]["exitCode"] == 137
    reasons = [e["reason"] for e in lab.events("Pod", pod["metadata"]["name"])]
    assert "BackOff" in reasons
    lab.wait_ready("InferenceService", "iris", timeout=30)


def test_daemon_sigkill_loses_nothing_and_service_returns_ready(lab, iris, local_home):
    before = {(o["kind"], o["metadata"]["name"]) for kind in ("InferenceService", "Deployment", "Service", "Ingress")
              for o in lab.list(kind)}
    info = running(local_home)
    os.kill(info["pid"], signal.SIGKILL)
    psutil.Process(info["pid"]).wait(timeout=10)
    # The next call restarts the daemon from its store; the runtime kept serving and is adopted.
    after = {(o["kind"], o["metadata"]["name"]) for kind in ("InferenceService", "Deployment", "Service", "Ingress")
             for o in lab.list(kind)}
    assert after == before
    lab.wait_ready("InferenceService", "iris", timeout=60)
    assert lab.infer("iris", v2_payload([SETOSA]))["outputs"][0]["data"] == [0]


def test_a_daemon_of_other_code_is_replaced_and_adopts_the_runtime(lab, iris, local_home):
    """After a `git pull`: connect() replaces the daemon, the runtime keeps serving and is adopted."""
    old = running(local_home)
    (local_home / "daemon.json").write_text(json.dumps({**old, "code_version": "0ld0ld0ld0ld"}))
    pod = next(p for p in lab.list("Pod") if p["metadata"]["name"].startswith("iris-predictor"))
    runtime_pid = pod["status"]["lab"]["containers"]["kserve-container"]["pid"]
    lab_helpers.connect("local")
    new = running(local_home)
    assert new["pid"] != old["pid"] and not psutil.pid_exists(old["pid"])
    assert new["code_version"] == code_version()
    lab.wait_ready("InferenceService", "iris", timeout=60)
    same = lab.get("Pod", pod["metadata"]["name"])
    assert same["status"]["lab"]["containers"]["kserve-container"]["pid"] == runtime_pid
    assert "Adopted" in [e["reason"] for e in lab.events("Pod", pod["metadata"]["name"])]
    assert lab.infer("iris", v2_payload([SETOSA]))["outputs"][0]["data"] == [0]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_printed_curl_command_works_as_printed(lab, iris, tmp_path):
    base, host = lab.endpoint("iris")
    (tmp_path / "payload.json").write_text(json.dumps(v2_payload([SETOSA])))
    command = curl_command(base, host, infer_path("iris", "v2"))
    done = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"][0]["data"] == [0]


def _iris_pod(lab) -> dict:
    return next(p for p in lab.list("Pod") if p["metadata"]["name"].startswith("iris-predictor"))


def _ready(obj: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (obj.get("status") or {}).get("conditions", []))


def test_a_wait_right_after_a_pod_deletion_sees_the_deletion(lab, iris):
    """Not "Ready after 0.0 s" from the pod that is gone: Ready is computed from the pods there are now."""
    lab.wait_ready("InferenceService", "iris", timeout=60)
    old = _iris_pod(lab)["metadata"]["name"]
    lab.delete("Pod", old)
    right_after = lab.get("InferenceService", "iris")
    assert not _ready(right_after)
    assert right_after["status"]["modelStatus"]["copies"]["totalCopies"] == 0
    lab.wait_ready("InferenceService", "iris", timeout=90)
    assert _iris_pod(lab)["metadata"]["name"] != old
    assert lab.infer("iris", v2_payload([SETOSA]))["outputs"][0]["data"] == [0]


def test_unloading_the_model_takes_the_pod_out_and_the_status_says_why(lab, iris):
    """KServe's model-repository extension is reachable through the edge, as through KServe's ingress; an
    unloaded model fails the readiness probe (it checks the model), so the pod leaves the endpoints."""
    lab.wait_ready("InferenceService", "iris", timeout=60)
    base, host = lab.endpoint("iris")
    unloaded = httpx.post(f"{base}/v2/repository/models/iris/unload", headers={"Host": host}, timeout=10)
    assert unloaded.status_code == 200 and unloaded.json() == {"name": "iris", "unload": True}
    failure = _failure(lab, "iris")
    assert failure["reason"] == "RuntimeUnhealthy" and "statuscode: 404" in failure["message"]
    status = lab.get("InferenceService", "iris")["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["PredictorReady"]["reason"] == "MinimumReplicasUnavailable"
    pod = _iris_pod(lab)
    assert not _ready(pod) and pod["status"]["phase"] == "Running"
    assert any(e["reason"] == "Unhealthy" and "Readiness probe failed" in e["message"]
               for e in lab.events("Pod", pod["metadata"]["name"]))
    refused = httpx.post(f"{base}/v2/models/iris/infer", json=v2_payload([SETOSA]), headers={"Host": host})
    assert refused.status_code == 503 and "no ready backend" in refused.json()["error"]  # out of the endpoints
    lab.delete("Pod", pod["metadata"]["name"])  # a new pod loads the model again
    lab.wait_ready("InferenceService", "iris", timeout=90)
    assert lab.infer("iris", v2_payload([SETOSA]))["outputs"][0]["data"] == [0]
