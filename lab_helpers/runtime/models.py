"""The model classes a local runtime process serves with `kserve.ModelServer`.

- `SKLearnModel` plays kserve-sklearnserver: one pickled estimator, V1 `instances` and V2 with a
  single input tensor, the same file rule and output naming as kserve's sklearnserver.
- `MLflowModel` plays kserve-mlserver (MLServer's MLflow runtime): V2 only, one named input per
  signature column, outputs named the way MLServer names them, so a request that works here
  works against kserve-mlserver on a cluster.

Bad input raises `kserve.errors.InvalidInput` (HTTP 400 with ``{"error": ...}``), never a 5xx.
Heavy libraries (joblib/sklearn, mlflow) are imported in `load()`, not at import time.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse
from kserve.utils.numpy_codec import from_np_dtype
from kserve.utils.utils import get_predict_input, get_predict_response

from . import prediction_metrics

SKLEARN_EXTENSIONS = (".joblib", ".pkl", ".pickle")
V2_DATATYPES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                "FP16", "FP32", "FP64", "BYTES")
# MLServer's MLflow runtime answers a numpy prediction through NumpyRequestCodec, a
# SingleInputRequestCodec: `encode_output(f"{DefaultOutputPrefix}1", ...)` with DefaultOutputPrefix
# "output-", i.e. "output-1", and NumpyCodec.encode_output pads a 1-D shape [N] to [N, 1]
# (`inject_batch_dimension`) and tags the output with content_type "np".
# (SeldonIO/MLServer mlserver/codecs/utils.py, mlserver/codecs/numpy.py,
#  runtimes/mlflow/mlserver_mlflow/runtime.py `encode_response(..., default_codec=TensorDictCodec)`.)
MLSERVER_NUMPY_OUTPUT = "output-1"
# What numpy/sklearn/pandas raise on data that does not fit (wrong width, strings, NaN, 500 as INT8...).
BAD_INPUT_ERRORS = (ValueError, TypeError, KeyError, OverflowError)
# MLflow column types as MLServer's MLflow runtime advertises them in model metadata; array, object
# and map columns are BYTES (SeldonIO/MLServer runtimes/mlflow/mlserver_mlflow/metadata.py).
MLFLOW_TO_V2 = {"boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32",
                "double": "FP64", "string": "BYTES", "binary": "BYTES", "datetime": "BYTES"}


class ModelLoadError(Exception):
    """The model dir does not hold a model this runtime can load; the message says what is wrong."""


def _require_dir(model_dir: Path) -> None:
    if not model_dir.is_dir():
        raise ModelLoadError(f"model dir {model_dir} does not exist or is not a directory")


class SKLearnModel(Model):
    """kserve-sklearnserver: exactly one *.joblib / *.pkl / *.pickle estimator in the model dir."""

    def __init__(self, name: str, model_dir: Path):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self._estimator: Any = None

    def load(self) -> bool:
        _require_dir(self.model_dir)
        import joblib

        model_files = sorted(path for path in self.model_dir.iterdir()
                             if path.is_file() and path.name.endswith(SKLEARN_EXTENSIONS))
        # The two messages of kserve's sklearnserver (python/sklearnserver/sklearnserver/model.py, __main__.py).
        if not model_files:
            raise ModelLoadError(f"fail to locate model file for model {self.name} under dir {self.model_dir}: "
                                 f"no {' / '.join('*' + ext for ext in SKLEARN_EXTENSIONS)} file")
        if len(model_files) > 1:
            raise ModelLoadError("More than one model file is detected, Only one is allowed within model_dir: "
                                 f"{[str(path) for path in model_files]}")
        try:
            self._estimator = joblib.load(model_files[0])
        except Exception as exc:  # noqa: BLE001 - a corrupt file or a missing/mismatched library
            raise ModelLoadError(f"cannot unpickle {model_files[0]}: {type(exc).__name__}: {exc}") from exc
        prediction_metrics.declare_classes(self.name, getattr(self._estimator, "classes_", ()))
        self.ready = True
        return self.ready

    def predict(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> dict | InferResponse:
        if isinstance(payload, InferRequest):
            _check_tensor_request(payload, self.name)
        elif not (isinstance(payload, dict) and isinstance(payload.get("instances", payload.get("inputs")), list)):
            raise InvalidInput(f"a V1 request to model {self.name} is a JSON object with an \"instances\" list, "
                               'e.g. {"instances": [[5.1, 3.5, 1.4, 0.2]]}')
        try:
            instances = get_predict_input(payload)
            result = self._estimator.predict(instances)
        except BAD_INPUT_ERRORS as exc:
            raise InvalidInput(f"model {self.name} cannot predict on this input: {exc}") from exc
        prediction_metrics.record(self.name, np.asarray(result).reshape(-1))
        return get_predict_response(payload, result, self.name)


def _check_tensor_request(request: InferRequest, model_name: str) -> None:
    """One tensor, like kserve's sklearnserver reads it (several only as columns with content_type "pd")."""
    content_type = (request.parameters or {}).get("content_type")
    if content_type != "pd" and len(request.inputs) != 1:
        raise InvalidInput(f"model {model_name} takes exactly one input tensor of shape [N, features]; "
                           f"got {len(request.inputs)}: {[inp.name for inp in request.inputs]}")
    for inp in request.inputs:
        _check_datatype(inp)


def _check_datatype(inp: InferInput) -> None:
    if inp.datatype not in V2_DATATYPES:
        raise InvalidInput(f"input '{inp.name}' has datatype {inp.datatype!r}; use one of {', '.join(V2_DATATYPES)}")


class MLflowModel(Model):
    """kserve-mlserver's MLflow runtime: the MLflow model dir (holding `MLmodel`), V2 columns in."""

    def __init__(self, name: str, model_dir: Path):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self._pyfunc: Any = None
        self._columns: list[Any] = []  # mlflow ColSpecs of the signature, empty without one

    def load(self) -> bool:
        _require_dir(self.model_dir)
        if not (self.model_dir / "MLmodel").is_file():
            raise ModelLoadError(f"no MLmodel file in {self.model_dir}: storageUri must point at the "
                                 "MLflow model directory (the one holding MLmodel)")
        import mlflow.pyfunc

        self._pyfunc = mlflow.pyfunc.load_model(str(self.model_dir))
        schema = self._pyfunc.metadata.get_input_schema()
        if schema is not None and schema.is_tensor_spec():
            raise ModelLoadError(f"the model in {self.model_dir} has a tensor-based signature; the local "
                                 "runtime serves column-based (DataFrame) MLflow signatures only")
        self._columns = list(schema.inputs) if schema is not None else []
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        """One [-1, 1] tensor per signature column, as MLServer's model metadata lists them."""
        return [{"name": col.name, "datatype": MLFLOW_TO_V2.get(getattr(col.type, "name", ""), "BYTES"),
                 "shape": [-1, 1]}
                for col in self._columns]

    def predict(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        if not isinstance(payload, InferRequest):
            raise InvalidInput(f"model {self.name} is served like kserve-mlserver, which speaks only the V2 "
                               f"protocol: POST /v2/models/{self.name}/infer with one named input per column, "
                               "e.g. {\"inputs\": [{\"name\": \"sepal_length\", \"shape\": [1], "
                               "\"datatype\": \"FP64\", \"data\": [5.1]}, ...]}")
        frame = self._to_frame(payload)
        from mlflow.exceptions import MlflowException

        try:
            prediction = self._pyfunc.predict(frame)
        except MlflowException as exc:
            # pyfunc wraps the schema check's own error (which names the column) in a long one quoting the data.
            cause = exc.__context__ if isinstance(exc.__context__, MlflowException) else exc
            raise InvalidInput(f"model {self.name} rejected the input: {cause.message}") from exc
        except BAD_INPUT_ERRORS as exc:
            raise InvalidInput(f"model {self.name} cannot predict on this input: {exc}") from exc
        if not isinstance(prediction, pd.DataFrame):
            prediction_metrics.record(self.name, np.asarray(prediction).reshape(-1))
        return InferResponse(response_id=payload.id or str(uuid.uuid4()), model_name=self.name,
                             infer_outputs=_encode_prediction(prediction))

    def _to_frame(self, request: InferRequest) -> pd.DataFrame:
        """Decode one input per column into a DataFrame, checked against the signature's columns."""
        given = [inp.name for inp in request.inputs]
        if len(set(given)) != len(given):
            raise InvalidInput(f"input names must be unique; got {given}")
        if self._columns:
            expected = [col.name for col in self._columns]
            missing = [col.name for col in self._columns if col.required and col.name not in given]
            unexpected = [name for name in given if name not in expected]
            if missing or unexpected:
                raise InvalidInput(f"model {self.name} takes one input per signature column {expected}; "
                                   f"missing: {missing}, unexpected: {unexpected}")
            order = [name for name in expected if name in given]
        else:
            order = given
        columns = {inp.name: _decode_column(inp) for inp in request.inputs}
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidInput(f"every column input needs the same number of rows; got {lengths}")
        return pd.DataFrame({name: columns[name] for name in order})


def _decode_column(inp: InferInput) -> np.ndarray:
    _check_datatype(inp)
    shape = list(inp.shape)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise InvalidInput(f"input '{inp.name}' has shape {shape}; a column input has shape [N] or [N, 1]")
    try:
        values = inp.as_numpy()
    except BAD_INPUT_ERRORS as exc:
        raise InvalidInput(f"input '{inp.name}': data does not match datatype {inp.datatype} "
                           f"and shape {shape}: {exc}") from exc
    return values.reshape(-1)


def _encode_prediction(prediction: Any) -> list[InferOutput]:
    """Encode like MLServer: a DataFrame through PandasCodec (one [N, 1] output per column, string
    columns tagged content_type "str"; mlserver/codecs/pandas.py), anything else as "output-1"."""
    if isinstance(prediction, pd.DataFrame):
        columns = {str(name): prediction[name].to_numpy() for name in prediction.columns}
        return [_output(name, values, "str" if values.dtype.kind in "USO" else None)
                for name, values in columns.items()]
    return [_output(MLSERVER_NUMPY_OUTPUT, np.asarray(prediction), "np")]


def _output(name: str, values: np.ndarray, content_type: str | None) -> InferOutput:
    if values.dtype.kind in "USO":
        values = values.astype(object)
    if values.ndim == 1:
        values = values.reshape(-1, 1)
    return InferOutput(name=name, shape=list(values.shape), datatype=from_np_dtype(values.dtype), data=values,
                       parameters={"content_type": content_type} if content_type else None)
