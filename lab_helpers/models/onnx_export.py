"""The heavier model as ONNX: converted with skl2onnx, and checked against the original before it is registered.

A converter can be subtly wrong (an operator's float32 arithmetic, a ZipMap left on, a class order
swapped), so an exported model is only trusted once it agrees with the scikit-learn estimator on
data neither has seen: the held-out split. The check compares class probabilities within an
absolute tolerance and the predicted labels exactly; a model outside it is refused, not registered.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

from ..errors import LabError
from .training import TrainedModel

# Pinned below skl2onnx's newest so older onnxruntime builds (as in Triton images) load the model.
ONNX_TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
ONNX_INPUT_NAME = "input"
# float32 inference against float64 scikit-learn: probabilities agree to ~1e-6 on this model.
PROBABILITY_TOLERANCE = 1e-4


class OnnxParityError(LabError):
    """The ONNX model does not answer like the original on the held-out set."""


@dataclass(frozen=True)
class OnnxParity:
    """How closely the ONNX model matches the original on the held-out rows."""

    rows: int
    max_abs_diff: float        # largest difference of a class probability
    label_agreement: float     # share of rows with the same predicted label
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.label_agreement == 1.0


def to_onnx(trained: TrainedModel) -> onnx.ModelProto:
    """Convert with skl2onnx: one float32 input tensor, plain `label` + `probabilities` outputs.

    ZipMap is switched off so the probabilities are a [batch, classes] tensor Triton can serve.
    """
    n_features = trained.dataset.X_train.shape[1]
    return convert_sklearn(
        trained.estimator,
        initial_types=[(ONNX_INPUT_NAME, FloatTensorType([None, n_features]))],
        options={"zipmap": False},
        target_opset=ONNX_TARGET_OPSET,
    )


def parity(trained: TrainedModel, model: onnx.ModelProto, tolerance: float = PROBABILITY_TOLERANCE) -> OnnxParity:
    """Run both models on the held-out split (onnxruntime on CPU) and compare their answers."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    features = trained.dataset.X_test
    labels, probabilities = session.run(["label", "probabilities"],
                                        {ONNX_INPUT_NAME: features.to_numpy(np.float32)})
    expected = trained.estimator.predict_proba(features)
    return OnnxParity(rows=len(features),
                      max_abs_diff=float(np.max(np.abs(probabilities - expected))),
                      label_agreement=float(np.mean(labels == trained.estimator.predict(features))),
                      tolerance=tolerance)


def checked_onnx(trained: TrainedModel, tolerance: float = PROBABILITY_TOLERANCE) -> tuple[onnx.ModelProto, OnnxParity]:
    """The converted model and its parity; OnnxParityError when it does not match the original."""
    model = to_onnx(trained)
    report = parity(trained, model, tolerance)
    if not report.ok:
        raise OnnxParityError(
            f"ONNX export of {trained.spec.name} ({trained.spec.variant}) differs from the scikit-learn model on "
            f"{report.rows} held-out rows: max |probability difference| {report.max_abs_diff:.2e} "
            f"(tolerance {tolerance:.0e}), labels equal on {report.label_agreement:.1%}; not registering it")
    return model, report
