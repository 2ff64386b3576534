"""A predicted-class counter the lab's model classes export beside KServe's latency histograms.

``lab_model_predictions_total{model_name, predicted_class}`` counts every row a model predicted, by
the class it chose. KServe's model server serves prometheus_client's default registry on
``/metrics`` (https://github.com/kserve/kserve/blob/v0.20.0/python/kserve/kserve/metrics.py), so a
custom counter there is scraped with the pod's own labels: per pod, hence per revision. A canary's
prediction shares can then be compared with its primary's in PromQL, with no cost on the request
path beyond one increment per distinct class in a response. Every class a model knows starts at 0,
so a class one revision never predicts still has a series to compare.
"""
from __future__ import annotations

from collections import Counter as Tally
from typing import Any, Iterable

from prometheus_client import Counter

PREDICTIONS = Counter("lab_model_predictions", "Rows predicted, by the class the model chose",
                      ["model_name", "predicted_class"])


def declare_classes(model_name: str, classes: Iterable[Any]) -> None:
    """Create the model's series at 0 so shares exist for every class from the first scrape."""
    for value in classes:
        PREDICTIONS.labels(model_name, _label(value))


def record(model_name: str, predictions: Iterable[Any]) -> None:
    """Count one response's predicted classes (a flat sequence of class values)."""
    for value, count in Tally(_label(v) for v in predictions).items():
        PREDICTIONS.labels(model_name, value).inc(count)


def _label(value: Any) -> str:
    """``1``, ``1.0`` and ``np.int64(1)`` are one class: ``"1"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value.item() if hasattr(value, "item") else value)
