"""Range-query results read against the load: per phase, on seconds since the load began, alert states in order."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from lab_helpers.bench.phases import Phase  # noqa: E402
from lab_helpers.prom.timeline import (alerts_table, by_phase, plot_phases, seconds_since,  # noqa: E402
                                       state_sequence, state_spans)

T0 = 1_700_000_000.0
PHASES = [Phase(5, T0, T0 + 20), Phase(15, T0 + 20, T0 + 40)]


def ramp(values_by_second: dict[float, float]) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": [pd.Timestamp(T0 + s, unit="s", tz="UTC") for s in values_by_second],
                         "value": list(values_by_second.values())})


def test_each_phase_gets_the_median_of_its_settled_samples():
    # Samples in the first 10 s of a phase still average the phase before: left out.
    throughput = ramp({4: 99, 12: 5, 16: 5, 18: 6, 24: 99, 32: 14, 36: 15, 40: 16, 50: 99})
    table = by_phase({"throughput": throughput, "nothing": pd.DataFrame(columns=["timestamp", "value"])},
                     PHASES, settle=10)
    assert table.index.tolist() == [5, 15] and table.index.name == "offered req/s"
    assert table["throughput"].tolist() == [5, 15]
    assert table["nothing"].isna().all()


def test_a_phase_without_settled_samples_is_nan():
    table = by_phase({"throughput": ramp({2: 5, 22: 15})}, PHASES, settle=10)
    assert all(math.isnan(v) for v in table["throughput"])


def test_seconds_since_the_origin():
    assert seconds_since(ramp({0: 1, 2.5: 1})["timestamp"], T0 + 1).tolist() == [-1.0, 1.5]


def test_the_plot_shows_the_data_on_seconds_since_the_load_began_with_legends_off_the_lines():
    series = {"p50": ramp({12: 3, 14: 4}), "p99": ramp({12: 9, 14: 11}), "rate": ramp({12: 5, 14: 5})}
    figure = plot_phases(series, {"latency (ms)": ["p50", "p99"], "throughput": ["rate"]}, PHASES, origin=T0)
    latency, throughput = figure.axes
    assert [line.get_label() for line in latency.get_lines()] == ["p50", "p99"]
    assert latency.get_lines()[1].get_xdata().tolist() == [12, 14]
    assert latency.get_lines()[1].get_ydata().tolist() == [9, 11]
    figure.canvas.draw()
    for ax in figure.axes:  # each legend lies right of its panel's plotting area
        assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    labels = [text.get_text() for text in latency.texts]
    assert labels == ["5 req/s", "15 req/s"]


def history(*states_at: tuple[float, str]) -> pd.DataFrame:
    return pd.DataFrame({"alertstate": [s for _, s in states_at],
                         "timestamp": [pd.Timestamp(T0 + t, unit="s", tz="UTC") for t, _ in states_at]})


def test_alert_states_in_time_order_with_repeats_collapsed_and_their_spans():
    seen = history((14, "firing"), (4, "pending"), (6, "pending"), (12, "firing"))
    assert state_sequence(seen) == ["pending", "firing"]
    assert state_sequence(history()) == []
    spans = state_spans(seen, origin=T0)
    assert spans.index.tolist() == ["pending", "firing"]
    assert spans.loc["firing"].tolist() == [12.0, 14.0, 2]


def test_active_alerts_show_since_when_in_seconds_and_a_rounded_value():
    alerts = pd.DataFrame([{"alertname": "ModelHighErrorRate", "state": "firing", "destination_workload": "iris",
                            "value": 0.199708, "active_at": pd.Timestamp(T0 + 21.123456789, unit="s", tz="UTC"),
                            "summary": "s"}])
    row = alerts_table(alerts, origin=T0).iloc[0].to_dict()
    assert row == {"alertname": "ModelHighErrorRate", "state": "firing", "destination_workload": "iris",
                   "value": 0.2, "active_since_s": 21.1, "summary": "s"}
