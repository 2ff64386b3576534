"""The pre- and post-processing of the lab's transformer, as pure functions both serving shapes share.

A caller sends what a field instrument records: one JSON object per flower with each measurement in
millimetres under ``<feature>_mm`` (``{"sepal_length_mm": 51, ...}``). The model was trained on
centimetres under the feature names of its MLflow signature (``sepal_length``) and answers a class
index. `FeatureSpec` turns the first into the columns the predictor takes (one V2 input per
signature column, the way kserve-mlserver reads them) and the index it answers into the label.
Bad input raises `kserve.errors.InvalidInput` (HTTP 400) naming the record and the field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse

RAW_SUFFIX = "_mm"
MM_PER_CM = 10.0


@dataclass(frozen=True)
class FeatureSpec:
    """The model's feature names (its signature's columns, in order) and its class labels, by index."""

    features: tuple[str, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.features or not self.labels:
            raise ValueError("FeatureSpec needs at least one feature and one label")

    @property
    def raw_fields(self) -> tuple[str, ...]:
        return tuple(f"{feature}{RAW_SUFFIX}" for feature in self.features)

    def columns(self, payload: Any) -> dict[str, list[float]]:
        """{feature: values in cm} from a V1 body ``{"instances": [{"<feature>_mm": mm, ...}, ...]}``."""
        instances = payload.get("instances") if isinstance(payload, dict) else None
        if not isinstance(instances, list) or not instances:
            raise InvalidInput('the transformer takes a V1 body {"instances": [{...}, ...]} with one object per '
                               f"flower holding {', '.join(self.raw_fields)} (millimetres)")
        columns: dict[str, list[float]] = {feature: [] for feature in self.features}
        for index, record in enumerate(instances):
            if not isinstance(record, dict):
                raise InvalidInput(f"instances[{index}]: expected an object with {', '.join(self.raw_fields)}, "
                                   f"got {type(record).__name__}")
            missing = [field for field in self.raw_fields if field not in record]
            if missing:
                raise InvalidInput(f"instances[{index}]: missing {', '.join(missing)}")
            for feature, field in zip(self.features, self.raw_fields):
                columns[feature].append(_centimetres(record[field], f"instances[{index}].{field}"))
        return columns

    def infer_request(self, model_name: str, payload: Any) -> InferRequest:
        """The V2 request the predictor takes: one FP64 input of shape [N] per feature column."""
        inputs = []
        for feature, values in self.columns(payload).items():
            column = InferInput(name=feature, shape=[len(values)], datatype="FP64")
            column.set_data_from_numpy(np.asarray(values, dtype=np.float64), binary_data=False)
            inputs.append(column)
        return InferRequest(model_name=model_name, infer_inputs=inputs)

    def label(self, index: Any) -> str:
        try:
            position = int(index)
        except (TypeError, ValueError):
            raise InvalidInput(f"the predictor answered {index!r}, not a class index") from None
        if not 0 <= position < len(self.labels):
            raise InvalidInput(f"the predictor answered class {position}; the labels are {list(self.labels)}")
        return self.labels[position]

    def labels_of(self, response: InferResponse) -> list[str]:
        """The label of each class index in the predictor's first output (MLServer's ``output-1``, [N, 1])."""
        if not response.outputs:
            raise InvalidInput("the predictor answered no outputs")
        return [self.label(index) for index in response.outputs[0].as_numpy().reshape(-1)]


def _centimetres(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{where}: expected a finite number of millimetres, got {value!r}")
    if value < 0:
        raise InvalidInput(f"{where}: a length cannot be negative ({value})")
    return float(value) / MM_PER_CM


def parse_spec(features: str, labels: str) -> FeatureSpec:
    """FeatureSpec from the image's comma-separated ``--features`` and ``--labels`` flags."""
    return FeatureSpec(tuple(f.strip() for f in features.split(",") if f.strip()),
                       tuple(label.strip() for label in labels.split(",") if label.strip()))


def raw_record(features: dict[str, float]) -> dict[str, float]:
    """A caller's record for one row of features in cm: ``{"<feature>_mm": mm}`` (for lessons and tests)."""
    return {f"{name}{RAW_SUFFIX}": round(float(value) * MM_PER_CM, 6) for name, value in features.items()}
