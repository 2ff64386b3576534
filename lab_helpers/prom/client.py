"""PromQL from a notebook: queries, alerts, rules and targets of a Prometheus as tidy DataFrames.

The same client serves both targets; only the URL differs, and each target knows its own
(``lab.prom``: `lab_helpers.local.prometheus`, `lab_helpers.kube.prometheus`).

Every frame has one row per series (instant) or per sample (range), one column per label, and
``value`` (float); rows are sorted by their labels so printed results are stable.
"""
from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any, Callable

import httpx
import pandas as pd

from ..errors import LabError, TargetUnavailable
from ..progress import Dots

RUNBOOK = "runbooks/prometheus-no-data.md"
TimeLike = datetime | pd.Timestamp | float | int | str


class PromClient:
    """The Prometheus HTTP API (``/api/v1``) with errors that quote Prometheus."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, unreachable_hint: str = "",
                 on_close: Callable[[], None] | None = None):
        self.base_url = base_url.rstrip("/")
        self.unreachable_hint = unreachable_hint
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._on_close = on_close

    def __enter__(self) -> PromClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def _get(self, path: str, params: dict[str, Any] | None = None, what: str = "") -> Any:
        try:
            response = self._http.get(f"/api/v1/{path}", params=params)
        except httpx.TransportError as exc:
            raise TargetUnavailable(f"Prometheus at {self.base_url} is not answering ({exc}). "
                                    f"{self.unreachable_hint}".strip()) from None
        if response.status_code == 503:  # listening, but still starting (TSDB replay) or shutting down
            raise TargetUnavailable(f"Prometheus at {self.base_url} is not ready yet (HTTP 503 on {path}). "
                                    f"{self.unreachable_hint}".strip())
        try:
            body = response.json()
        except ValueError:
            raise LabError(f"Prometheus at {self.base_url} answered {path} with HTTP {response.status_code} and no "
                           f"JSON: {response.text[:300]}") from None
        if body.get("status") != "success":
            raise LabError(f"Prometheus rejected {what or path}: {body.get('errorType', 'error')}: "
                           f"{body.get('error', response.text[:300])}")
        return body["data"]

    def query(self, promql: str, at: TimeLike | None = None) -> pd.DataFrame:
        """Instant query: a row per series (labels..., value), or ``timestamp`` too for a range selector."""
        params = {"query": promql}
        if at is not None:
            params["time"] = _unix(at)
        return _frame(self._get("query", params, f"the query {promql!r}"))

    def query_range(self, promql: str, start: TimeLike = "-5m", end: TimeLike = "now",
                    step: str | float = "2s") -> pd.DataFrame:
        """Range query in long format: a row per sample (labels..., timestamp, value).

        `start`/`end` take datetimes, unix seconds, ``"now"`` or a duration back from now (``"-5m"``).
        """
        params = {"query": promql, "start": _unix(start), "end": _unix(end), "step": step}
        return _frame(self._get("query_range", params, f"the range query {promql!r}"))

    def wait_for_series(self, promql: str, timeout: float = 60.0, min_points: int = 1,
                        every: float = 1.0) -> pd.DataFrame:
        """Poll until the instant query has `min_points` rows with a value; LabError with what it saw otherwise.

        A Prometheus that is still starting counts as no data until the deadline.
        """
        dots = Dots(f"waiting for {promql}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame, unavailable = self.query(promql), None
            except TargetUnavailable as exc:
                frame, unavailable = pd.DataFrame(columns=["value"]), exc
            points = int(frame["value"].notna().sum())
            if points >= min_points:
                dots.done(f"{points} series")
                return frame
            if time.monotonic() >= deadline:
                dots.done("timed out")
                if unavailable is not None:
                    raise unavailable
                raise LabError(f"{promql!r} had {points} series with a value after {timeout:g} s (wanted "
                               f"{min_points}). Scrape targets: {self._targets_summary()}. See {RUNBOOK}")
            time.sleep(every)
            dots.tick()

    def _targets_summary(self) -> str:
        targets = self.targets()
        if targets.empty:
            return "none (no monitor selected, or no pod running)"
        rows = [f"{t.job} {t.instance} {t.health}" + (f" ({t.last_error})" if t.last_error else "")
                for t in targets.itertuples()]
        return "; ".join(rows[:6]) + (f"; and {len(rows) - 6} more" if len(rows) > 6 else "")

    def alerts(self) -> pd.DataFrame:
        """Active alerts (state ``pending`` or ``firing``): alertname, state, labels..., value, active_at, summary."""
        rows = [{"alertname": a["labels"].get("alertname", ""), "state": a.get("state", ""),
                 **{k: v for k, v in a["labels"].items() if k != "alertname"},
                 "value": _float(a.get("value")), "active_at": pd.to_datetime(a.get("activeAt"), utc=True),
                 "summary": (a.get("annotations") or {}).get("summary", "")}
                for a in self._get("alerts")["alerts"]]
        empty = ["alertname", "state", "value", "active_at", "summary"]
        return _sorted(pd.DataFrame(rows, columns=None if rows else empty), ["alertname", "state"])

    def wait_until_quiet(self, alertname: str, timeout: float = 120.0, every: float = 2.0, **labels: str) -> None:
        """Wait until no `alertname` alert (with these labels) is pending or firing.

        An alert over a 1m window stays active for up to a minute after its cause stops; a lesson that wants
        to watch the whole pending -> firing life starts from a quiet alert.
        """
        dots = None
        deadline = time.monotonic() + timeout
        while True:
            alerts = self.alerts()
            active = alerts[alerts["alertname"] == alertname]
            for key, value in labels.items():
                active = active[active[key] == value] if key in active else active.iloc[0:0]
            if active.empty:
                if dots:
                    dots.done("quiet")
                return
            if time.monotonic() >= deadline:
                if dots:
                    dots.done("still active")
                raise LabError(f"alert {alertname} {labels or ''} still {', '.join(sorted(set(active['state'])))} "
                               f"after {timeout:g} s")
            dots = dots or Dots(f"waiting for alert {alertname} to resolve")
            dots.tick()
            time.sleep(every)

    def wait_for_alert_state(self, alertname: str, state: str, since: TimeLike, timeout: float = 120.0,
                             every: float = 2.0, step: str = "2s", **labels: str) -> pd.DataFrame:
        """Poll the alert's history (the ``ALERTS`` series since `since`) until it shows `state`; that history.

        ``ALERTS`` keeps every state an alert was in, so the answer shows the whole way there (pending, firing).
        LabError with the states seen if `state` does not come within `timeout`.
        """
        selector = ", ".join([f'alertname="{alertname}"', *(f'{k}="{v}"' for k, v in labels.items())])
        dots = Dots(f"waiting for alert {alertname} to be {state}")
        deadline = time.monotonic() + timeout
        while True:
            history = self.query_range(f"ALERTS{{{selector}}}", start=since, end="now", step=step)
            seen = sorted(set(history["alertstate"])) if "alertstate" in history else []
            if state in seen:
                dots.done(state)
                return history
            if time.monotonic() >= deadline:
                dots.done("timed out")
                raise LabError(f"alert {alertname} {labels or ''} was not {state} within {timeout:g} s "
                               f"(states seen: {', '.join(seen) or 'none'}). See {RUNBOOK}")
            time.sleep(every)
            dots.tick()

    def rules(self) -> pd.DataFrame:
        """Every loaded rule: group, name, type (alerting/recording), state, health, query, for_s, last_error."""
        rows = [{"group": group["name"], "name": rule["name"], "type": rule["type"],
                 "state": rule.get("state", ""), "health": rule.get("health", ""), "query": rule["query"],
                 "for_s": rule.get("duration", 0), "last_error": rule.get("lastError", ""),
                 "active_alerts": len(rule.get("alerts") or []), "file": group.get("file", "")}
                for group in self._get("rules")["groups"] for rule in group["rules"]]
        columns = ["group", "name", "type", "state", "health", "query", "for_s", "last_error", "active_alerts", "file"]
        return pd.DataFrame(rows, columns=columns).sort_values(["group", "name"], ignore_index=True)

    def targets(self) -> pd.DataFrame:
        """Active scrape targets: job (scrape pool), instance, health, last_error, last_scrape, and where they are."""
        rows = [{"job": t.get("scrapePool", ""), "instance": t["labels"].get("instance", ""),
                 "health": t.get("health", ""), "last_error": t.get("lastError", ""),
                 "last_scrape": pd.to_datetime(t.get("lastScrape"), utc=True),
                 **{k: t["labels"].get(k, "") for k in ("namespace", "service", "pod")},
                 "scrape_url": t.get("scrapeUrl", "")}
                for t in self._get("targets", {"state": "active"})["activeTargets"]]
        columns = ["job", "instance", "health", "last_error", "last_scrape", "namespace", "service", "pod",
                   "scrape_url"]
        return pd.DataFrame(rows, columns=columns).sort_values(["job", "instance"], ignore_index=True)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _unix(value: TimeLike) -> float:
    """Unix seconds for a datetime, a number, ``"now"``, ``"-5m"`` (before now) or an ISO date string."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "now":
            return time.time()
        if text.startswith("-"):
            return time.time() - pd.Timedelta(text[1:]).total_seconds()
        value = pd.Timestamp(text)
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.timestamp()


def _sorted(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    """Label columns sorted (given ones first), value-like columns last; rows sorted by labels."""
    tail = [c for c in ("timestamp", "value", "active_at", "summary") if c in frame.columns]
    labels = [c for c in first if c in frame.columns]
    labels += sorted(c for c in frame.columns if c not in labels and c not in tail)
    frame = frame[labels + tail]
    keys = labels + (["timestamp"] if "timestamp" in frame.columns else [])
    return frame.sort_values(keys, ignore_index=True) if keys and not frame.empty else frame.reset_index(drop=True)


def _frame(data: dict[str, Any]) -> pd.DataFrame:
    """A Prometheus result (vector, matrix, scalar, string) as a tidy DataFrame."""
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        return pd.DataFrame([{"timestamp": pd.to_datetime(result[0], unit="s", utc=True), "value": _float(result[1])
                              if kind == "scalar" else result[1]}])
    if kind == "vector":
        rows = [{**series["metric"], "value": _float(series["value"][1])} for series in result]
        return _sorted(pd.DataFrame(rows, columns=None if rows else ["value"]), ["__name__"])
    rows = [{**series["metric"], "timestamp": stamp, "value": _float(value)}
            for series in result for stamp, value in series["values"]]
    frame = pd.DataFrame(rows, columns=None if rows else ["timestamp", "value"])
    # Prometheus keeps milliseconds; rounding drops the float noise that would print as ...884000063.
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True).dt.round("ms")
    return _sorted(frame, ["__name__"])
