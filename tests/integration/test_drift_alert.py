"""The drift alert's round trip with real processes: logged traffic -> the drift job as a Job of its CronJob
(reaching the receiver and the Pushgateway by their cluster names) -> Prometheus -> PredictionDriftDetected."""
from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone

import numpy as np
import pytest
from sklearn.datasets import load_iris

from lab_helpers.inference import post
from lab_helpers.paths import manifests_dir
from lab_helpers.prom.timeline import state_sequence

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("prometheus-pushgateway") is None,
                                 reason="needs the Debian packages prometheus and prometheus-pushgateway")]
DRIFT = manifests_dir() / "drift"


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def send(lab, rows: np.ndarray, batch: int = 30) -> None:
    base, host = lab.endpoint("iris-logged")
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        payload = {"inputs": [{"name": "input-0", "shape": list(chunk.shape), "datatype": "FP64",
                               "data": chunk.tolist()}]}
        assert post(base, host, "/v2/models/iris-logged/infer", payload).status_code == 200


@pytest.fixture(scope="module")
def lab(monitored_lab, sklearn_dir):
    lab = monitored_lab
    for name in ("00-pushgateway.yaml", "10-receiver.yaml", "30-drift-alert.yaml"):
        lab.apply(DRIFT / name)
    lab.apply(DRIFT / "20-iris-logged.yaml", {"IRIS_SKLEARN_STORAGE_URI": sklearn_dir.as_uri()})
    lab.wait_for("Deployment", "pushgateway", "Available", namespace="monitoring", timeout=60)
    lab.wait_for("Deployment", "drift-receiver", "Available", timeout=60)
    lab.wait_ready("InferenceService", "iris-logged", timeout=90)
    return lab


def test_a_changed_class_mix_raises_the_drift_alert_through_the_pushgateway(lab):
    features, labels = load_iris(return_X_y=True)
    rng = np.random.default_rng(5)
    reference_start = time.time()
    send(lab, features[rng.integers(0, len(features), 300)])          # every class, as in training
    reference_end = time.time()
    time.sleep(1.1)
    shifted_start = time.time()
    send(lab, features[labels == 2][rng.integers(0, 50, 300)])        # virginica only: the mix changed
    window_s = int(time.time() - shifted_start) + 2
    lab.apply(DRIFT / "40-drift-cronjob.yaml", {
        "DRIFT_SCHEDULE": "0 0 1 1 *", "DRIFT_WINDOW": f"{window_s}s",
        "DRIFT_REFERENCE_WINDOW": f"{iso(reference_start - 1)}/{iso(reference_end + 1)}"})
    job = lab.run_cronjob_now("prediction-drift")
    lab.wait_for("Job", job["metadata"]["name"], "Complete", timeout=120)
    pushed = lab.prom.wait_for_series('lab_prediction_drift_p_value{inference_service="iris-logged"}', timeout=60)
    assert pushed["value"].iloc[0] < 0.01 and pushed["job"].iloc[0] == "prediction-drift"   # honorLabels kept it
    rows = lab.prom.query('lab_prediction_drift_window_rows{inference_service="iris-logged"}')["value"].iloc[0]
    assert 100 <= rows <= 300   # the shifted rows still inside the job's window when its pod ran (none of the reference)
    history = lab.prom.wait_for_alert_state("PredictionDriftDetected", "firing", since=shifted_start, timeout=60,
                                            inference_service="iris-logged")
    assert state_sequence(history)[-1] == "firing"   # no `for`: each value already judges a whole window
