"""The lab's custom predictor image: one `kserve.Model` that does a transformer's and a runtime's work in-process.

    python -m lab_helpers.runtime.custom_predictor --model_name iris-custom --model_dir /mnt/models \\
        --http_port 8080 --features sepal_length,... --labels setosa,...

It serves the MLflow model a standard runtime (kserve-mlserver) serves, loaded with
``mlflow.pyfunc``, and takes the same raw V1 body as the transformer (`transformer_features`):
millimetres in, labels out, with no hop to a separate predictor. That saves a network hop, and it
costs what custom serving code always costs: this file, its image and its bugs are yours to keep
up (protocol conformance, metrics, batching, security fixes), where a standard runtime gets them
from upstream. The InferenceService gives it the model through the ``STORAGE_URI`` env, for
which KServe adds the storage-initializer.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from kserve import Model
from kserve.errors import InvalidInput

from lab_helpers.runtime.pod import listen_port, pod_path
from lab_helpers.runtime.server import MAX_BODY_BYTES
from lab_helpers.runtime.transformer_features import FeatureSpec, parse_spec


class CustomPredictor(Model):
    """Raw V1 records -> features -> the MLflow model, in this process -> labels."""

    def __init__(self, name: str, model_dir: Path, spec: FeatureSpec):
        super().__init__(name)
        self.model_dir, self.spec = Path(model_dir), spec
        self._pyfunc: Any = None

    def load(self) -> bool:
        import mlflow.pyfunc

        self._pyfunc = mlflow.pyfunc.load_model(str(self.model_dir))
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None,
                response_headers: dict[str, str] | None = None) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise InvalidInput(f"the custom predictor {self.name} speaks V1: POST /v1/models/{self.name}:predict")
        frame = pd.DataFrame(self.spec.columns(payload))
        return {"predictions": [self.spec.label(index) for index in self._pyfunc.predict(frame)]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers.runtime.custom_predictor",
                                     description="Serve an MLflow model with the lab's custom kserve.Model.")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_dir", type=Path, default=Path("/mnt/models"))
    parser.add_argument("--http_port", type=int, default=8080)
    parser.add_argument("--features", required=True, help="the model's feature names, in signature order")
    parser.add_argument("--labels", required=True, help="the class labels, by class index")
    args = parser.parse_args(argv)
    args.model_dir, args.http_port = pod_path(args.model_dir), listen_port(args.http_port)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve.model_server parses sys.argv when imported
    from lab_helpers.runtime.server import serve

    model = CustomPredictor(args.model_name, args.model_dir, parse_spec(args.features, args.labels))
    try:
        model.load()
    except Exception as exc:  # noqa: BLE001 - any load failure is a ModelLoadFailed, reported in one line
        print(f"failed to load the MLflow model {args.model_name!r} from {args.model_dir}: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    serve(model, args.http_port, MAX_BODY_BYTES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
