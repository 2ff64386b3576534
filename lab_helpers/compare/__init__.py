"""Notebook 12: the same model served three ways, measured side by side.

(a) raw ``tritonserver`` on a model repository, (b) the KServe InferenceService on the Triton runtime, (c) a
hand-rolled FastAPI app on the MLflow model. Small modules, one job each: `servers` (standalone processes,
recorded so `down` stops them), `triton_standalone`, `fastapi_app`, `models` (the registry hand-over),
`kserve_path`, `measure`, `config_lines`, `features`, `table`.
"""
