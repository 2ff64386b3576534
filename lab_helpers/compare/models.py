"""The one model all three paths serve, handed over by the registry, and the check that they answer alike.

Every path starts from the same registered version: (b) gets its Triton repository as the storageUri,
(a) and (c) download the very same URIs with MLflow's artifact client (a local path on the local target,
the bucket on a cluster — then this machine needs the bucket's credentials, as a standalone deploy would).
Before anything is timed, the same rows go to every path and the predicted labels must be equal.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LabError
from ..inference import v2_tensor

MODEL = "digits"
VERSION = 1
INPUT = "input"      # the ONNX graph's input: the tensor all three paths take, FP32
LABEL = "label"      # the output all three answer with: one predicted class per row
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@dataclass(frozen=True)
class ServedModel:
    """Where each path's copy of the model is: the URIs (b) uses, and the local copies of (a) and (c)."""

    triton_uri: str
    mlflow_uri: str
    triton_repository: Path
    mlflow_dir: Path


def hand_over(model_uri: Callable[..., str], dest: Path) -> ServedModel:
    """Resolve version `VERSION` of `MODEL` through the registry (`lab.model_uri`) and download both flavors."""
    import mlflow.artifacts

    triton_uri = model_uri(MODEL, version=VERSION, flavor="onnx")
    mlflow_uri = model_uri(MODEL, version=VERSION, flavor="mlflow")
    previous = os.environ.get(PROGRESS_BAR_ENV)
    os.environ[PROGRESS_BAR_ENV] = "false"   # a bar per download would fill the notebook
    try:
        repository = mlflow.artifacts.download_artifacts(artifact_uri=triton_uri, dst_path=str(dest / "triton"))
        mlflow_dir = mlflow.artifacts.download_artifacts(artifact_uri=mlflow_uri, dst_path=str(dest / "mlflow"))
    finally:
        if previous is None:
            os.environ.pop(PROGRESS_BAR_ENV, None)
        else:
            os.environ[PROGRESS_BAR_ENV] = previous
    return ServedModel(triton_uri, mlflow_uri, Path(repository), Path(mlflow_dir))


def request(rows: np.ndarray) -> dict[str, Any]:
    """The one V2 request every path gets: rows as the ONNX graph's FP32 `input` tensor."""
    return v2_tensor(INPUT, np.asarray(rows, dtype=np.float32), "FP32")


def labels(answer: Mapping[str, Any]) -> list[int]:
    """The predicted classes of a V2 answer (Triton's are shaped [rows, 1], the FastAPI app's [rows])."""
    for output in answer.get("outputs") or []:
        if output.get("name") == LABEL:
            return [int(value) for value in np.ravel(output["data"])]
    names = [output.get("name") for output in answer.get("outputs") or []]
    raise LabError(f"the answer has no {LABEL!r} output (outputs: {names})")


def check_equal(answers: Mapping[str, Mapping[str, Any]]) -> int:
    """Labels from every path, compared row by row; the number of rows, or a LabError naming who disagrees."""
    found = {path: labels(answer) for path, answer in answers.items()}
    reference_path, reference = next(iter(found.items()))
    for path, predicted in found.items():
        differing = [row for row, (a, b) in enumerate(zip(reference, predicted)) if a != b]
        if len(predicted) != len(reference) or differing:
            raise LabError(f"{path} and {reference_path} predict differently on the same rows "
                           f"({len(predicted)} vs {len(reference)} labels, rows differing: {differing[:10]}); "
                           "nothing is timed until they agree")
    return len(reference)
