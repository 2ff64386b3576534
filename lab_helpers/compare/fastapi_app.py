"""Path (c), the anti-pattern: a hand-rolled FastAPI + uvicorn process serving the MLflow model.

It answers the same V2 request as Triton in a few dozen lines, which is why teams write it. What it lacks is
the point of notebook 12: no batching, no metrics, no readiness beyond "the model loaded", no scale to zero,
no canary, no request logging, no policy — each would be more code of your own to write and keep.

    python -m lab_helpers.compare.fastapi_app --model-dir DIR --model-name digits --port 8080
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferRequest(BaseModel):
    inputs: list[Tensor]


def create_app(model_dir: str, model_name: str) -> FastAPI:
    """Load the MLflow model (pyfunc) first, so the port opens only once it can answer."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_dir)
    columns = model.metadata.get_input_schema().input_names()
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict:
        return {"name": model_name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    def infer(name: str, request: InferRequest) -> dict:
        if name != model_name:
            raise HTTPException(404, f"no model {name!r}; this server serves {model_name!r}")
        tensor = request.inputs[0]
        try:
            rows = np.asarray(tensor.data, dtype=np.float64).reshape(tensor.shape)
            labels = model.predict(pd.DataFrame(rows, columns=columns))
        except Exception as exc:  # a wrong shape or schema: the caller's fault
            raise HTTPException(400, f"input {tensor.name!r}: {exc}") from None
        return {"model_name": name, "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [len(labels)], "data": np.asarray(labels).tolist()}]}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.model_dir, args.model_name), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
