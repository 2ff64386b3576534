"""Timings of the inference shapes side by side: latency per row, throughput and cost per row, one table, one plot.

Cost per row is counted as a cluster bills it: the CPU *requested* by everything that was busy
serving (the pods' container requests, or one core for in-process work) times the wall time, per
row, in core-milliseconds. It ignores what the requests leave idle between runs: an online
service is paid for around the clock, a Job only while it runs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from kubernetes.utils.quantity import parse_quantity


@dataclass(frozen=True)
class ShapeRun:
    shape: str                    # e.g. "online: transformer + mlserver"
    rows: int
    seconds: float                # wall time of the whole run
    latencies: tuple[float, ...]  # seconds per row, from when it could be scored to its answer
    cores: float                  # CPU requested by what did the work

    @property
    def throughput(self) -> float:
        """Rows per second over the run."""
        return self.rows / self.seconds

    def latency(self, quantile: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(int(quantile * len(ordered)), len(ordered) - 1)]

    @property
    def core_ms_per_row(self) -> float:
        return 1000 * self.cores * self.seconds / self.rows


def timed_calls(call: Callable[[], Any], count: int) -> tuple[float, tuple[float, ...]]:
    """Run `call` `count` times in a row: (total seconds, each call's seconds)."""
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        before = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - before)
    return time.perf_counter() - started, tuple(latencies)


def requested_cores(templates: Iterable[dict[str, Any]]) -> float:
    """The CPU requests of pod templates (a Deployment's or Job's ``spec.template``), in cores, summed."""
    total = 0.0
    for template in templates:
        for container in template["spec"].get("containers") or []:
            cpu = ((container.get("resources") or {}).get("requests") or {}).get("cpu")
            total += float(parse_quantity(cpu)) if cpu else 0.0
    return total


def table(runs: list[ShapeRun]) -> Any:
    """A DataFrame, one row per run: rows, wall time, throughput, p50/p95 latency, requested cores, cost."""
    import pandas as pd

    return pd.DataFrame([{
        "shape": run.shape, "rows": run.rows, "seconds": round(run.seconds, 2),
        "rows/s": round(run.throughput, 1), "p50 ms": round(1000 * run.latency(0.5), 1),
        "p95 ms": round(1000 * run.latency(0.95), 1), "cores requested": round(run.cores, 2),
        "core-ms/row": round(run.core_ms_per_row, 2)} for run in runs]).set_index("shape")


def plot(runs: list[ShapeRun]) -> Any:
    """Latency (p50, bar to p95) against throughput, both on log scales: each shape is one point."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for run in runs:
        p50, p95 = 1000 * run.latency(0.5), 1000 * run.latency(0.95)
        axes.errorbar([run.throughput], [p50], yerr=[[0], [max(p95 - p50, 0)]], fmt="o", capsize=3,
                      label=run.shape)
    axes.set(xscale="log", yscale="log", xlabel="throughput (rows/s)", ylabel="latency per row (ms, p50 to p95)",
             title="Inference shapes: latency vs throughput")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    return figure
