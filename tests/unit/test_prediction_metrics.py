"""The predicted-class counter the lab's runtime exports: every known class from the start, rows by class."""
from __future__ import annotations

import numpy as np
from prometheus_client import REGISTRY

from lab_helpers.runtime import prediction_metrics


def value(model: str, predicted: str) -> float | None:
    return REGISTRY.get_sample_value("lab_model_predictions_total", {"model_name": model, "predicted_class": predicted})


def test_known_classes_start_at_zero_and_rows_are_counted_by_class():
    prediction_metrics.declare_classes("m-test", np.array([0, 1, 2]))
    assert [value("m-test", c) for c in "012"] == [0.0, 0.0, 0.0]
    prediction_metrics.record("m-test", np.array([2, 2, 1, 2.0]))
    assert [value("m-test", c) for c in "012"] == [0.0, 1.0, 3.0]
