"""The kubernetes target applies manifests/shapes as they are: the transformer and custom predictor InferenceServices,
Ready once KServe reports TransformerReady, and the batch Job with its image and input (kmock)."""
from __future__ import annotations

import pytest
from kube_fixtures import MockCluster, cluster  # noqa: F401  (cluster is a pytest fixture)

from lab_helpers.errors import LabError
from lab_helpers.shapes import lesson

VARIABLES = {"NAMESPACE": "lab", "IRIS_STORAGE_URI": "s3://mlflow/1/abc/artifacts/model",
             "TRANSFORMER_IMAGE": "ghcr.io/you/serving-lab-transformer:0.1",
             "CUSTOM_PREDICTOR_IMAGE": "ghcr.io/you/serving-lab-custom-predictor:0.1",
             "BATCH_SCORER_IMAGE": "ghcr.io/you/serving-lab-batch-scorer:0.1",
             "BATCH_INPUT_URI": "s3://lab-batch/iris/rows.csv", "BATCH_SIZE": "100", "BATCH_CONCURRENCY": "4"}
READY = {"conditions": [{"type": kind, "status": "True"} for kind in
                        ("IngressReady", "PredictorReady", "TransformerReady", "Ready")],
         "url": "http://iris-shapes-lab.example.com"}


def test_the_shapes_manifests_apply_as_they_are(cluster: MockCluster) -> None:
    lab = cluster.lab()
    lab.apply("manifests/shapes", VARIABLES)
    isvc = cluster.stored("InferenceService", "lab", "iris-shapes")
    [transformer] = isvc["spec"]["transformer"]["containers"]
    assert transformer["image"] == "ghcr.io/you/serving-lab-transformer:0.1"
    assert "--predictor_protocol=v2" in transformer["args"]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://mlflow/1/abc/artifacts/model"
    [custom] = cluster.stored("InferenceService", "lab", "iris-custom")["spec"]["predictor"]["containers"]
    assert custom["env"] == [{"name": "STORAGE_URI", "value": "s3://mlflow/1/abc/artifacts/model"}]
    [scorer] = cluster.stored("Job", "lab", "iris-batch-score")["spec"]["template"]["spec"]["containers"]
    assert scorer["image"] == "ghcr.io/you/serving-lab-batch-scorer:0.1"
    assert scorer["args"][:2] == ["--input=s3://lab-batch/iris/rows.csv",
                                  "--url=http://iris-shapes-transformer.lab.svc.cluster.local"]


def test_the_transformer_service_is_ready_when_kserve_says_so(cluster: MockCluster) -> None:
    lab = cluster.lab()
    lab.apply("manifests/shapes/10-iris-transformer.yaml", VARIABLES)
    cluster.patch_status_later(0.3, "InferenceService", "lab", "iris-shapes", READY)
    isvc = lab.wait_ready("InferenceService", "iris-shapes", timeout=10)
    assert {c["type"] for c in isvc["status"]["conditions"]} >= {"TransformerReady", "PredictorReady"}


def test_a_cluster_batch_needs_an_s3_uri(cluster: MockCluster, monkeypatch) -> None:
    monkeypatch.delenv(lesson.BATCH_URI_ENV, raising=False)
    with pytest.raises(LabError, match="set LAB_BATCH_URI to an s3:// URI"):
        lesson.batch_input_uri(cluster.lab())
    monkeypatch.setenv(lesson.BATCH_URI_ENV, "s3://lab-batch/iris/rows.csv")
    assert lesson.batch_input_uri(cluster.lab()) == "s3://lab-batch/iris/rows.csv"
