"""KServe's inference logger on the local target with real processes: an InferenceService with a logger,
its events through the gateway to the drift receiver pod, and read_window over what the pod stored."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

import lab_helpers
from lab_helpers.drift.receiver import STORE_FILE, read_window
from lab_helpers.paths import manifests_dir

pytestmark = pytest.mark.integration
DRIFT = manifests_dir() / "drift"
SAMPLES = [[5.1, 3.5, 1.4, 0.2], [6.8, 2.8, 4.8, 1.4], [7.7, 3.0, 6.1, 2.3]]


def v2_request(rows: list[list[float]]) -> dict:
    """kserve-sklearnserver's V2 request: one FP64 tensor of shape [rows, 4]."""
    return {"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": rows}]}


@pytest.fixture(scope="module")
def lab(local_home, sklearn_dir):
    lab = lab_helpers.connect("local")
    lab.apply(manifests_dir() / "flux")
    lab.wait_ready("HelmRelease", "kserve-runtime-configs", namespace="kserve", timeout=60)
    lab.apply(DRIFT / "10-receiver.yaml")
    lab.wait_for("Deployment", "drift-receiver", "Available", timeout=60)
    lab.apply(DRIFT / "20-iris-logged.yaml", {"IRIS_SKLEARN_STORAGE_URI": sklearn_dir.as_uri()})
    lab.wait_ready("InferenceService", "iris-logged", timeout=90)
    return lab


def receiver_store(lab, local_home):
    pod = next(p for p in lab.list("Pod", "lab")
               if p["metadata"]["labels"].get("app.kubernetes.io/name") == "drift-receiver")
    return local_home / "pods" / "lab" / pod["metadata"]["name"] / "data" / STORE_FILE


def window_with(lab, local_home, since, rows: int, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        store = receiver_store(lab, local_home)
        if store.exists():
            frame = read_window(store, "iris-logged", since, datetime.now(timezone.utc) + timedelta(minutes=1))
            if len(frame) >= rows and frame["prediction"].notna().sum() >= rows - 1:
                return frame
        if time.monotonic() > deadline:
            raise AssertionError(f"the receiver did not store {rows} rows of iris-logged within {timeout}s")
        time.sleep(0.5)


def test_logged_requests_and_200_responses_reach_the_receiver_and_read_back_as_a_window(lab, local_home):
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    base, host = lab.endpoint("iris-logged")
    path = "/v2/models/iris-logged/infer"
    answers = [httpx.post(base + path, json=v2_request([sample]), timeout=30,
                          headers={"Host": host, "X-Request-Id": f"req-{i}"}) for i, sample in enumerate(SAMPLES)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    bad = httpx.post(base + path, json=v2_request([[1.0, 2.0, 3.0]]), timeout=30, headers={"Host": host, "Ce-Id": "bad-request"})
    assert bad.status_code != 200  # a model error: its request is logged, its response is not
    frame = window_with(lab, local_home, since, rows=len(SAMPLES) + 1)
    good = frame[frame["id"] != "bad-request"].sort_values("time")
    assert good["prediction"].tolist() == [a.json()["outputs"][0]["data"][0] for a in answers]
    assert good[[f"input-0_{j}" for j in range(4)]].to_numpy().tolist() == SAMPLES
    failed = frame[frame["id"] == "bad-request"]
    assert len(failed) == 1 and failed["prediction"].isna().all()
    # The gateway's counters say what was sent: 4 requests, 3 responses.
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert 'inference_logger_events_sent_total{inferenceservice="iris-logged",namespace="lab",type="request"} 4.0' \
        in metrics
    assert 'inference_logger_events_sent_total{inferenceservice="iris-logged",namespace="lab",type="response"} 3.0' \
        in metrics
