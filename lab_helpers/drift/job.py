"""The drift job: one window of logged predictions against a reference window, its verdict pushed as gauges.

    python -m lab_helpers.drift check --receiver http://drift-receiver.lab --inference-service iris-logged \
        --window 15m --reference-window 2026-12-02T10:00:00Z/2026-12-02T11:00:00Z \
        --pushgateway http://pushgateway.monitoring:9091

The reference is a window of the same service's logged traffic known to be good (e.g. the hour after a
validated rollout): it needs no access to the model or its training data from inside the job, and it
compares like with like (the same logger, the same preprocessing). The job pushes to the Pushgateway,
grouped by ``inference_service`` and ``namespace``:

- ``lab_prediction_drift_p_value``, ``lab_prediction_drift_chi2``, ``lab_prediction_drift_psi`` (class shares);
- ``lab_prediction_drift_window_rows`` (predictions judged; 0 for an empty window);
- ``lab_prediction_drift_feature_p_value{feature}`` (KS, Benjamini-Hochberg adjusted);
- ``lab_prediction_drift_last_run_success`` and ``..._last_run_timestamp_seconds``.

An empty or too small window is not an error: it is logged and pushed with ``window_rows`` and no
p-value, so the alert (which asks for at least 100 rows) stays quiet. A receiver or Pushgateway that
cannot be reached ends the run with exit code 1 and one line saying which, for the Job's retries.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from .receiver import read_window
from .statistics import DEFAULT_ALPHA, class_shares, class_shift, feature_tests

log = logging.getLogger("lab.drift")
JOB_NAME = "prediction-drift"
MIN_ROWS = 100  # below this a window is reported, not judged (the alert rule asks for the same)


@dataclass(frozen=True)
class Check:
    receiver: str
    inference_service: str
    namespace: str | None
    reference: tuple[datetime, datetime]
    window: timedelta
    alpha: float = DEFAULT_ALPHA


@dataclass(frozen=True)
class Verdict:
    rows: int
    alpha: float = DEFAULT_ALPHA
    p_value: float | None = None
    chi2: float | None = None
    psi: float | None = None
    features: pd.DataFrame | None = None

    @property
    def drifted(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha


def judge(reference: pd.DataFrame, current: pd.DataFrame, alpha: float = DEFAULT_ALPHA) -> Verdict:
    """The statistics of `current` against `reference` (both `read_window` frames)."""
    ref_predictions = reference["prediction"].dropna().astype(str)
    predictions = current["prediction"].dropna().astype(str)
    if len(ref_predictions) < MIN_ROWS:
        raise ValueError(f"the reference window holds {len(ref_predictions)} predictions; it needs at least "
                         f"{MIN_ROWS} to stand for normal traffic (choose a longer or busier window)")
    if len(predictions) < MIN_ROWS:
        return Verdict(rows=len(predictions), alpha=alpha)
    classes = sorted(set(ref_predictions) | set(predictions))
    shift = class_shift(class_shares(ref_predictions, classes), predictions, alpha)
    features = None
    inputs = [c for c in current.columns if c not in ("id", "time", "prediction")]
    if inputs and current[inputs].notna().any().any():
        features = feature_tests(reference[inputs].dropna(), current[inputs].dropna())
    return Verdict(rows=shift.rows, alpha=alpha, p_value=shift.p_value, chi2=shift.chi2, psi=shift.psi,
                   features=features)


def gauges(check: Check, verdict: Verdict, success: bool) -> CollectorRegistry:
    """The run's gauges in a registry of their own, ready to push."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float, **labels: str) -> None:
        metric = Gauge(name, doc, list(labels), registry=registry)
        (metric.labels(**labels) if labels else metric).set(value)

    gauge("lab_prediction_drift_window_rows", "Predictions in the judged window", verdict.rows)
    if verdict.p_value is not None:
        gauge("lab_prediction_drift_p_value", "Chi-squared p-value of the class shares vs the reference",
              verdict.p_value)
        gauge("lab_prediction_drift_chi2", "Chi-squared statistic of the class shares", verdict.chi2 or 0.0)
        gauge("lab_prediction_drift_psi", "PSI of the class shares vs the reference", verdict.psi or 0.0)
    if verdict.features is not None:
        metric = Gauge("lab_prediction_drift_feature_p_value", "KS p-value per input feature (BH-adjusted)",
                       ["feature"], registry=registry)
        for row in verdict.features.itertuples():
            metric.labels(row.feature).set(row.p_adjusted)
    gauge("lab_prediction_drift_last_run_success", "1 if the last run judged or reported its window",
          1.0 if success else 0.0)
    gauge("lab_prediction_drift_last_run_timestamp_seconds", "When the last run ended", time.time())
    return registry


def run(check: Check, pushgateway: str, now: datetime | None = None) -> Verdict:
    """Read both windows, judge, push; raises ConnectionError naming what could not be reached."""
    now = now or datetime.now(timezone.utc)
    try:
        reference = read_window(check.receiver, check.inference_service, *check.reference, check.namespace)
        current = read_window(check.receiver, check.inference_service, now - check.window, now, check.namespace)
    except (OSError, httpx.HTTPError) as exc:
        raise ConnectionError(f"the drift receiver at {check.receiver} could not be read: {exc}") from exc
    verdict = judge(reference, current, check.alpha)
    if verdict.p_value is None:
        log.warning("window of %s holds %d predictions (< %d): reported, not judged", check.inference_service,
                    verdict.rows, MIN_ROWS)
    else:
        log.info("%s: %d predictions, chi2 %.2f, p %.3g, PSI %.3f -> %s", check.inference_service, verdict.rows,
                 verdict.chi2, verdict.p_value, verdict.psi, "DRIFT" if verdict.drifted else "no drift")
    grouping = {"inference_service": check.inference_service, "namespace": check.namespace or ""}
    try:
        push_to_gateway(pushgateway.removeprefix("http://"), job=JOB_NAME, grouping_key=grouping,
                        registry=gauges(check, verdict, success=True))
    except OSError as exc:
        raise ConnectionError(f"the Pushgateway at {pushgateway} could not be reached: {exc}") from exc
    return verdict
