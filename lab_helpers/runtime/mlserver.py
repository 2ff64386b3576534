"""The local stand-in for the MLServer image: configured by environment, as kserve-mlserver configures it.

KServe's kserve-mlserver ClusterServingRuntime passes no arguments; it sets ``MLSERVER_HTTP_PORT``,
``MODELS_DIR`` and ``MLSERVER_MODEL_IMPLEMENTATION`` (the model class for the format, from the
``modelClass`` label KServe fills in), and the model's name in ``MLSERVER_MODEL_NAME``. MLServer
itself cannot share a venv with kserve 0.21, so this serves the model with the lab's
`kserve.ModelServer` process, keeping MLServer's V2 contract (`runtime.models.MLflowModel`).
"""
from __future__ import annotations

import os
import sys

from lab_helpers.runtime import server

# MLServer's runtime classes -> the lab's model formats (SeldonIO/MLServer runtimes/*).
IMPLEMENTATIONS = {"mlserver_mlflow.MLflowRuntime": "mlflow", "mlserver_sklearn.SKLearnModel": "sklearn"}


def argv_from_env(env: dict[str, str]) -> list[str]:
    """The lab runtime's flags for MLServer's environment; a clear error naming what is missing."""
    missing = [name for name in ("MLSERVER_MODEL_NAME", "MLSERVER_HTTP_PORT") if not env.get(name)]
    if missing:
        raise SystemExit(f"mlserver: environment variable(s) {', '.join(missing)} not set (the ServingRuntime "
                         "container or the InferenceService controller sets them)")
    implementation = env.get("MLSERVER_MODEL_IMPLEMENTATION", "mlserver_mlflow.MLflowRuntime")
    if implementation not in IMPLEMENTATIONS:
        raise SystemExit(f"mlserver: MLSERVER_MODEL_IMPLEMENTATION={implementation!r} is not served here "
                         f"(known: {', '.join(sorted(IMPLEMENTATIONS))})")
    model_dir = env.get("MLSERVER_MODEL_URI") or env.get("MODELS_DIR") or "/mnt/models"
    return ["--model-format", IMPLEMENTATIONS[implementation], "--protocol", "v2",
            "--model_name", env["MLSERVER_MODEL_NAME"], "--model_dir", model_dir,
            "--http_port", env["MLSERVER_HTTP_PORT"]]


if __name__ == "__main__":
    sys.exit(server.main(argv_from_env(dict(os.environ))))
