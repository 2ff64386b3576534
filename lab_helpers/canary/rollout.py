"""A canary rollout over time: the Canary's status sampled while it runs, and each revision's metrics after.

`RolloutRecorder` samples what Flagger writes (``phase``, ``canaryWeight``, ``failedChecks``) from
``lab.get("Canary", ...)`` on either target. `revision_metrics` asks Prometheus, for the recorded
span, for each revision's success rate, p99 latency and predicted-class shares with the same series
the MetricTemplates query (Envoy cluster stats per ``-primary``/``-canary`` Service, the runtime's
predicted-class counter per pod): the figures a plot shows are the ones Flagger judged, not a
second measurement taken beside it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd

from ..prom.client import PromClient
from ..progress import Dots
from ..scaling.recorder import ObjectRecorder

DONE_PHASES = ("Succeeded", "Failed")
REVISIONS = ("primary", "canary")


@dataclass
class RolloutRecorder(ObjectRecorder):
    """A Canary's ``phase``, ``weight`` (canaryWeight) and ``failed_checks`` over time."""

    KIND: ClassVar[str] = "Canary"
    COLUMNS: ClassVar[tuple[str, ...]] = ("phase", "weight", "failed_checks")
    interval: float = 1.0

    def read(self, canary: dict[str, Any]) -> tuple[str, int, int]:
        status = canary.get("status") or {}
        return status.get("phase") or "", int(status.get("canaryWeight") or 0), int(status.get("failedChecks") or 0)

    def wait_for_phase(self, phases: tuple[str, ...] = DONE_PHASES, timeout: float = 300.0) -> str:
        """Block until the Canary, having left `phases` since the recording started, is in one of them again:
        the end of the rollout a change just started (Flagger notices the change at its next pass)."""
        dots = Dots(f"Canary {self.name}: waiting for {' or '.join(phases)}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            phases_seen = [s[1] for s in self.samples]
            left = next((i for i, phase in enumerate(phases_seen) if phase not in phases), None)
            done = next((p for p in phases_seen[left:] if p in phases), None) if left is not None else None
            if done is not None:
                dots.done(done)
                return done
            dots.tick()
            time.sleep(self.interval / 2)
        dots.done("timed out")
        last = self.samples[-1][1:] if self.samples else "no sample"
        raise TimeoutError(f"Canary {self.name} did not reach {' or '.join(phases)} within {timeout:g} s (last: "
                           f"{last}); read its events, see runbooks/canary-rollback-triggered.md")

    def seconds_since_start(self, at: pd.Timestamp) -> float:
        """A Prometheus timestamp on this recording's time axis."""
        return at.timestamp() - self.started_at


def phase_sequence(frame: pd.DataFrame, since: float = 0.0) -> list[str]:
    """The distinct successive phases from `since` seconds on, e.g. ['Initialized', 'Progressing', 'Succeeded']."""
    phases = frame.loc[frame["seconds"] >= since, "phase"].tolist()
    return [p for i, p in enumerate(phases) if p and (i == 0 or p != phases[i - 1])]


def revision_queries(namespace: str, service: str, target: str, window: str = "30s") -> dict[str, dict[str, str]]:
    """PromQL per figure and revision, on the MetricTemplates' series (manifests/canary/20-metric-templates.yaml)."""
    queries: dict[str, dict[str, str]] = {}
    for revision in REVISIONS:
        cluster = f'envoy_cluster_name=~".+/{namespace}_{service}-{revision}_[0-9]+"'
        pods = f'{target}-primary' if revision == "primary" else target
        pod = f'namespace="{namespace}", pod=~"{pods}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"'
        queries[revision] = {
            "success_rate": f'sum(rate(envoy_cluster_upstream_rq{{{cluster}, envoy_response_code!~"5.."}}[{window}]))'
                            f' / sum(rate(envoy_cluster_upstream_rq{{{cluster}}}[{window}])) * 100',
            "p99_ms": f'histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket'
                      f'{{{cluster}}}[{window}])))',
            "requests_per_s": f'sum(rate(envoy_cluster_upstream_rq{{{cluster}}}[{window}]))',
            "shares": f'sum by (predicted_class) (rate(lab_model_predictions_total{{{pod}}}[{window}])) '
                      f'/ scalar(sum(rate(lab_model_predictions_total{{{pod}}}[{window}])))',
        }
    return queries


def revision_metrics(prom: PromClient, recorder: RolloutRecorder, service: str, target: str,
                     namespace: str, window: str = "30s", step: str = "2s") -> pd.DataFrame:
    """Long format, one row per sample: ``seconds`` (on the recorder's axis), ``revision``, ``metric``
    (``success_rate``, ``p99_ms``, ``requests_per_s``, ``share_<class>``), ``value``."""
    end = recorder.started_at + (recorder.samples[-1][0] if recorder.samples else 0.0)
    rows = []
    for revision, queries in revision_queries(namespace, service, target, window).items():
        for metric, promql in queries.items():
            frame = prom.query_range(promql, start=recorder.started_at, end=end, step=step)
            for row in frame.itertuples(index=False):
                name = f"share_{row.predicted_class}" if metric == "shares" else metric
                rows.append({"seconds": recorder.seconds_since_start(row.timestamp), "revision": revision,
                             "metric": name, "value": row.value})
    return pd.DataFrame(rows, columns=["seconds", "revision", "metric", "value"])
