"""Triton's metrics as the lab reads them from Prometheus: what dynamic batching did.

Triton counts, per model, the requests it answered (``nv_inference_request_success``), the rows it
inferred (``nv_inference_count``) and the times it ran the model (``nv_inference_exec_count``).
Rows per execution above rows per request means the dynamic batcher joined requests into one run.
Counters are read as totals before and after a load, so the difference is exact (no rate()
extrapolation), and for one pod: a deleted pod's last values linger in Prometheus until they go stale. https://github.com/triton-inference-server/server/blob/main/docs/user_guide/metrics.md
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import LabError
from .client import PromClient

METRICS = {"requests": "nv_inference_request_success", "rows": "nv_inference_count",
           "executions": "nv_inference_exec_count"}
RUNBOOK = "runbooks/prometheus-no-data.md"


@dataclass(frozen=True)
class Batching:
    requests: float
    rows: float
    executions: float

    def __sub__(self, earlier: Batching) -> Batching:
        return Batching(self.requests - earlier.requests, self.rows - earlier.rows,
                        self.executions - earlier.executions)

    @property
    def rows_per_request(self) -> float:
        return self.rows / self.requests if self.requests else float("nan")

    @property
    def rows_per_execution(self) -> float:
        return self.rows / self.executions if self.executions else float("nan")


def _selector(model: str, pod: str) -> str:
    return f'{{model="{model}",pod="{pod}"}}'


def counters(prom: PromClient, model: str, pod: str) -> Batching:
    """Triton's totals for `model` in `pod` as last scraped (0 before the first scrape)."""
    def total(metric: str) -> float:
        frame = prom.query(f"sum({metric}{_selector(model, pod)})")
        return float(frame["value"].iloc[0]) if len(frame) else 0.0

    return Batching(**{field: total(metric) for field, metric in METRICS.items()})


def counters_at_rest(prom: PromClient, model: str, pod: str, scrape_interval: float = 5.0,
                     timeout: float = 90.0) -> Batching:
    """The totals once Prometheus scrapes Triton and they stay the same across a scrape interval (the
    PodMonitor's 5 s): a baseline that includes every request already answered, so later ones alone move it."""
    prom.wait_for_series(METRICS["rows"] + _selector(model, pod), timeout=timeout)
    deadline = time.monotonic() + timeout
    previous = counters(prom, model, pod)
    while True:
        time.sleep(scrape_interval * 1.2)  # a little over one interval: at least one scrape in between
        seen = counters(prom, model, pod)
        if seen == previous:
            return seen
        if time.monotonic() >= deadline:
            raise LabError(f"Triton's counters of model {model!r} still moving after {timeout:g} s: something else "
                           "is sending it requests, so a load's share of them cannot be told apart")
        previous = seen


def wait_for_requests(prom: PromClient, model: str, pod: str, requests: float, timeout: float = 60.0) -> Batching:
    """Poll until Prometheus has scraped at least `requests` answered requests of `model` in `pod`; the totals then."""
    deadline = time.monotonic() + timeout
    while True:
        seen = counters(prom, model, pod)
        if seen.requests >= requests:
            return seen
        if time.monotonic() >= deadline:
            raise LabError(f"Prometheus has {seen.requests:.0f} of {requests:.0f} requests of Triton model {model!r} "
                           f"after {timeout:g} s: is Triton's metrics port scraped "
                           f"(manifests/triton/30-triton-podmonitor.yaml)? See {RUNBOOK}")
        time.sleep(1.0)
