"""The inference shapes on the local target with real processes: the transformer InferenceService as two components
reached through the gateway, the custom predictor, the batch Job scoring a file through the service, and the
transformer's answer and the service's status when its predictor pod is gone."""
from __future__ import annotations

import pytest

import lab_helpers
from lab_helpers.paths import manifests_dir
from lab_helpers.shapes import lesson
from lab_helpers.shapes.objects import read_bytes, scored_uri

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(local_home, iris_mlflow_dir):
    lab = lab_helpers.connect("local")
    lab.apply(manifests_dir() / "flux")
    lab.wait_ready("HelmRelease", "kserve-runtime-configs", namespace="kserve", timeout=30)
    for manifest in ("10-iris-transformer.yaml", "20-iris-custom-predictor.yaml"):
        lab.apply(lesson.SHAPES / manifest, {"IRIS_STORAGE_URI": iris_mlflow_dir.as_uri()})
    for name in (lesson.TRANSFORMED, lesson.CUSTOM):
        lab.wait_ready("InferenceService", name, timeout=180)
    return lab


def test_the_transformer_is_the_entry_point_and_calls_the_predictor_by_its_cluster_name(lab):
    rows = lesson.raw_rows(5)
    answer = lab.infer(lesson.TRANSFORMED, {"instances": rows}, protocol="v1")
    assert len(answer["predictions"]) == 5 and set(answer["predictions"]) <= {"setosa", "versicolor", "virginica"}
    assert lab.infer(lesson.CUSTOM, {"instances": rows}, protocol="v1") == answer
    status = lab.get("InferenceService", lesson.TRANSFORMED)["status"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"IngressReady": "True", "PredictorReady": "True", "TransformerReady": "True", "Ready": "True"}


def test_the_batch_job_scores_the_file_through_the_service_and_writes_beside_it(lab):
    rows = lesson.raw_rows(120)
    run, labels = lesson.batch_job(lab, rows, batch_size=25, concurrency=2, timeout=120)
    assert run.rows == 120 and labels == lab.infer(lesson.CUSTOM, {"instances": rows}, protocol="v1")["predictions"]
    assert read_bytes(scored_uri(lesson.batch_input_uri(lab))).decode().splitlines()[0].endswith(",label")


def test_a_transformer_whose_predictor_pod_is_gone_answers_502_json_and_the_status_says_so(lab):
    response, conditions = lesson.predictor_gone(lab)
    assert response.status_code == 502
    assert response.json()["error"].startswith(f"predictor {lesson.TRANSFORMED}-predictor.lab ")
    assert response.json()["error"].endswith("see runbooks/service-not-ready.md")
    assert conditions == {"IngressReady": "True", "PredictorReady": "False", "TransformerReady": "True",
                          "Ready": "False"}
