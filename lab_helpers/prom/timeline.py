"""Query results on the load's own time line: seconds since the load began, figures per load phase, alert states.

Prometheus answers in wall-clock time; a learner reads "20 s into the run, in the 15 req/s phase". Figures are
taken per phase because a median over a run of three offered rates describes none of them.
"""
from __future__ import annotations

import math
from typing import Iterable

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ..bench.phases import Phase


def seconds_since(stamps: pd.Series, origin: float) -> pd.Series:
    """Timestamps (tz-aware) as seconds after `origin` (unix seconds), to the millisecond Prometheus keeps."""
    return ((stamps - pd.Timestamp(origin, unit="s", tz="UTC")).dt.total_seconds()).round(3)


def by_phase(series: dict[str, pd.DataFrame], phases: Iterable[Phase], settle: float) -> pd.DataFrame:
    """The median of each range-query result within each phase, leaving out the phase's first `settle` seconds.

    A ``rate(...[10s])`` still averages over the previous phase for 10 s after the offered rate changes, so
    `settle` is the query's window. One row per phase (index: offered req/s), one column per series; NaN where a
    phase has no sample.
    """
    rows = {}
    for phase in phases:
        low = pd.Timestamp(phase.start + settle, unit="s", tz="UTC")
        high = pd.Timestamp(phase.end, unit="s", tz="UTC")
        rows[phase.rate] = {
            name: (frame.loc[frame["timestamp"].between(low, high), "value"].median() if not frame.empty else math.nan)
            for name, frame in series.items()
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(series))
    table.index.name = "offered req/s"
    return table


def plot_phases(series: dict[str, pd.DataFrame], panels: dict[str, list[str]], phases: list[Phase],
                origin: float) -> Figure:
    """One panel per y-axis label in `panels` (the names of the series it shows), against seconds since `origin`.

    Each phase is shaded and labelled with its offered rate; legends sit right of the panels, off the lines.
    """
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), sharex=True, squeeze=False)
    for ax, (title, names) in zip(axes[:, 0], panels.items()):
        for index, phase in enumerate(phases):
            ax.axvspan(phase.start - origin, phase.end - origin, color="0.5", alpha=0.08 if index % 2 else 0.16, lw=0)
        for name in names:
            frame = series[name]
            if not frame.empty:
                ax.plot(seconds_since(frame["timestamp"], origin), frame["value"], label=name)
        ax.set_ylabel(title)  # not a title: the top edge carries the phase labels
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize="small")
    top = axes[0, 0]
    for phase in phases:
        top.annotate(f"{phase.rate:g} req/s", ((phase.start + phase.end) / 2 - origin, 1.0),
                     xycoords=("data", "axes fraction"), xytext=(0, 3), textcoords="offset points",
                     ha="center", va="bottom", fontsize="small")
    axes[-1, 0].set_xlabel("seconds since the load began")
    figure.tight_layout()
    return figure


def state_sequence(history: pd.DataFrame) -> list[str]:
    """An alert's states (``ALERTS`` range-query rows) in time order, repeats collapsed: e.g. ['pending', 'firing']."""
    if history.empty:
        return []
    states = history.sort_values("timestamp")["alertstate"].tolist()
    return [state for index, state in enumerate(states) if index == 0 or state != states[index - 1]]


def state_spans(history: pd.DataFrame, origin: float) -> pd.DataFrame:
    """When the alert was in each state: first and last sample in seconds since `origin`, and the sample count."""
    timed = history.assign(seconds=seconds_since(history["timestamp"], origin))
    spans = timed.groupby("alertstate")["seconds"].agg(first_s="min", last_s="max", samples="count")
    return spans.sort_values("first_s")


def alerts_table(alerts: pd.DataFrame, origin: float) -> pd.DataFrame:
    """Active alerts (`PromClient.alerts`) to print: active since when (s after `origin`), value to 3 places."""
    labels = [c for c in alerts.columns if c not in ("alertname", "state", "value", "active_at", "summary")]
    table = alerts.assign(value=alerts["value"].round(3),
                          active_since_s=seconds_since(alerts["active_at"], origin).round(1))
    return table[["alertname", "state", *labels, "value", "active_since_s", "summary"]]
