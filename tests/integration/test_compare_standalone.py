"""Notebook 12's standalone paths for real: raw tritonserver and the FastAPI app on the digits model answer alike,
wrk measures them, and `python -m lab_helpers down` stops them when a run left them behind."""
from __future__ import annotations

import httpx
import mlflow.sklearn
import numpy as np
import pytest
import skops.io
from mlflow.models import infer_signature

from lab_helpers.cli import main as cli
from lab_helpers.compare import triton_standalone
from lab_helpers.compare.measure import INFER_PATH, Target, load_points
from lab_helpers.compare.models import check_equal, request
from lab_helpers.compare.run import start_fastapi
from lab_helpers.compare.servers import recorded
from lab_helpers.models.onnx_export import checked_onnx
from lab_helpers.models.training import LAB_MODELS, train
from lab_helpers.models.triton_repository import write_repository

pytestmark = pytest.mark.integration


def test_standalone_paths_agree_are_measured_and_down_stops_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    digits = train(next(spec for spec in LAB_MODELS if spec.name == "digits"))
    write_repository(checked_onnx(digits)[0], "digits", tmp_path / "triton")
    X = digits.dataset.X_train
    mlflow.sklearn.save_model(digits.estimator, str(tmp_path / "mlflow"),
                              signature=infer_signature(X, digits.estimator.predict(X)),
                              skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(digits.estimator)))
    triton = triton_standalone.start(tmp_path / "triton", tmp_path)
    fastapi = start_fastapi(tmp_path / "mlflow")
    try:
        assert triton.wait_ready() > 0 and fastapi.wait_ready() > 0
        rows = digits.dataset.X_test.to_numpy(np.float32)[:64]
        answers = {server.name: httpx.post(server.url + INFER_PATH, json=request(rows), timeout=30).json()
                   for server in (triton, fastapi)}
        assert check_equal(answers) == 64
        assert httpx.post(fastapi.url + "/v2/models/other/infer", json=request(rows[:1])).status_code == 404
        assert httpx.post(fastapi.url + INFER_PATH, json=request(rows[:1, :3])).status_code == 400
        targets = [Target("triton", triton.url + INFER_PATH), Target("fastapi", fastapi.url + INFER_PATH)]
        points = load_points(targets, request(rows[:1]), [2], 1, tmp_path)
        assert points["errors"].sum() == 0 and (points["requests"] > 0).all()
        assert triton.rss_bytes() > 0 and fastapi.rss_bytes() > 0
        assert recorded() == sorted([triton.name, fastapi.name])
    finally:   # as if the notebook had been interrupted: nothing stopped them, `down` must
        assert cli(["down"]) == 0
    assert triton.popen.wait(timeout=20) is not None and fastapi.popen.wait(timeout=20) is not None
    assert recorded() == []
