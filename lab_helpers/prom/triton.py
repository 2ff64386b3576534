"""Triton's metrics as the lab reads them from Prometheus: what dynamic batching did.

Triton counts, per model, the rows it inferred (``nv_inference_count``) and the times it ran the
model (``nv_inference_exec_count``); each request also counts once in ``nv_inference_request_success``.
Rows per execution above rows per request means the dynamic batcher joined requests into one run.
https://github.com/triton-inference-server/server/blob/main/docs/user_guide/metrics.md
"""
from __future__ import annotations

from dataclasses import dataclass

from .client import PromClient


@dataclass(frozen=True)
class Batching:
    requests: float
    rows: float
    executions: float

    @property
    def rows_per_request(self) -> float:
        return self.rows / self.requests if self.requests else float("nan")

    @property
    def rows_per_execution(self) -> float:
        return self.rows / self.executions if self.executions else float("nan")


def batching(prom: PromClient, model: str, window: str = "2m") -> Batching:
    """Increases of Triton's counters for `model` over the last `window` (waits for the series to exist)."""
    def increase(metric: str) -> float:
        frame = prom.wait_for_series(f'sum(increase({metric}{{model="{model}"}}[{window}]))', timeout=60)
        return float(frame["value"].iloc[0])

    return Batching(requests=increase("nv_inference_request_success"), rows=increase("nv_inference_count"),
                    executions=increase("nv_inference_exec_count"))
