"""Prometheus API results as tidy DataFrames, and the time arguments a notebook passes."""
from __future__ import annotations

import math
import socket
import time

import pandas as pd
import pytest

from lab_helpers.errors import LabError, TargetUnavailable
from lab_helpers.local.prometheus import local_prom_client
from lab_helpers.prom.client import PromClient, _frame, _unix


def test_a_vector_is_a_row_per_series_with_label_columns_sorted_and_value_last():
    frame = _frame({"resultType": "vector", "result": [
        {"metric": {"destination_workload": "b", "response_code": "200"}, "value": [1700000000.0, "2.5"]},
        {"metric": {"destination_workload": "a", "response_code": "400"}, "value": [1700000000.0, "NaN"]}]})
    assert list(frame.columns) == ["destination_workload", "response_code", "value"]
    assert frame["destination_workload"].tolist() == ["a", "b"]
    assert math.isnan(frame["value"][0]) and frame["value"][1] == 2.5


def test_an_empty_vector_still_has_a_value_column():
    frame = _frame({"resultType": "vector", "result": []})
    assert frame.empty and list(frame.columns) == ["value"]


def test_a_matrix_is_long_format_with_utc_timestamps():
    frame = _frame({"resultType": "matrix", "result": [
        {"metric": {"__name__": "up", "job": "lab-gateway"}, "values": [[1700000002, "1"], [1700000000, "0"]]}]})
    assert list(frame.columns) == ["__name__", "job", "timestamp", "value"]
    assert frame["value"].tolist() == [0.0, 1.0]  # sorted by time within the series
    assert frame["timestamp"][0] == pd.Timestamp(1700000000, unit="s", tz="UTC")


def test_a_scalar_is_one_row():
    frame = _frame({"resultType": "scalar", "result": [1700000000, "3"]})
    assert frame["value"].tolist() == [3.0]


def test_time_arguments():
    now = time.time()
    assert _unix("now") == pytest.approx(now, abs=1)
    assert _unix("-5m") == pytest.approx(now - 300, abs=1)
    assert _unix(1700000000) == 1700000000.0
    assert _unix("2023-11-14T22:13:20Z") == 1700000000.0
    assert _unix(pd.Timestamp("2023-11-14 22:13:20")) == 1700000000.0  # naive means UTC


def test_an_unreachable_prometheus_is_target_unavailable_with_the_hint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        with PromClient(url, timeout=2, unreachable_hint="Install kube-prometheus-stack.") as client:
            with pytest.raises(TargetUnavailable, match=f"Prometheus at {url} is not answering .*Install kube"):
                client.query("up")


def test_the_local_client_reads_the_port_from_daemon_json(tmp_path):
    with pytest.raises(TargetUnavailable, match="local control plane is not running"):
        local_prom_client(tmp_path)
    (tmp_path / "daemon.json").write_text('{"api_port": 1, "gateway_port": 2}')
    with pytest.raises(LabError, match="names no prometheus_port"):
        local_prom_client(tmp_path)
    (tmp_path / "daemon.json").write_text('{"prometheus_port": 41999}')
    assert local_prom_client(tmp_path).base_url == "http://127.0.0.1:41999"


def test_waiting_on_a_prometheus_that_never_comes_up_ends_with_target_unavailable(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        with PromClient(f"http://127.0.0.1:{probe.getsockname()[1]}", timeout=1) as client:
            with pytest.raises(TargetUnavailable):
                client.wait_for_series("up", timeout=0.5, every=0.1)
    assert capsys.readouterr().out.rsplit("\r", 1)[-1].startswith("⏳ waiting for up: timed out in")


def test_wait_until_quiet_returns_once_the_alert_is_gone_and_times_out_otherwise(monkeypatch):
    answers = iter([[{"labels": {"alertname": "ModelHighErrorRate", "destination_workload": "iris-predictor"},
                      "state": "firing", "value": "0.2", "activeAt": "2026-11-26T00:00:00Z"}], []])
    client = PromClient("http://127.0.0.1:9")
    monkeypatch.setattr(client, "_get", lambda path, *a, **k: {"alerts": next(answers)})
    client.wait_until_quiet("ModelHighErrorRate", timeout=5, every=0.01, destination_workload="iris-predictor")
    firing = [{"labels": {"alertname": "ModelHighErrorRate", "destination_workload": "iris-predictor"},
               "state": "firing", "value": "0.2", "activeAt": "2026-11-26T00:00:00Z"}]
    monkeypatch.setattr(client, "_get", lambda path, *a, **k: {"alerts": firing})
    with pytest.raises(LabError, match="still firing"):
        client.wait_until_quiet("ModelHighErrorRate", timeout=0.05, every=0.01)
    other = [{"labels": {"alertname": "ModelHighErrorRate", "destination_workload": "wine-predictor"},
              "state": "firing", "value": "1", "activeAt": "2026-11-26T00:00:00Z"}]
    monkeypatch.setattr(client, "_get", lambda path, *a, **k: {"alerts": other})
    client.wait_until_quiet("ModelHighErrorRate", timeout=0.05, every=0.01, destination_workload="iris-predictor")


def test_a_prometheus_still_starting_is_unavailable_not_an_error_and_a_wait_rides_it_out():
    """Prometheus listens before it is ready and answers 503 in plain text meanwhile."""
    import httpx

    answers = iter([httpx.Response(503, text="Service Unavailable")] * 2)

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json={"status": "success", "data": {
            "resultType": "vector", "result": [{"metric": {"job": "x"}, "value": [1700000000, "1"]}]}}))

    prom = PromClient("http://127.0.0.1:9")
    prom._http = httpx.Client(base_url=prom.base_url, transport=httpx.MockTransport(handler))
    with pytest.raises(TargetUnavailable, match="not ready yet"):
        prom.query("up")
    frame = prom.wait_for_series("up", timeout=10, every=0.01)
    assert frame["value"].tolist() == [1.0]


def test_range_timestamps_keep_the_milliseconds_prometheus_has_and_no_float_noise():
    frame = _frame({"resultType": "matrix", "result": [{"metric": {}, "values": [[1764629373.884, "1"]]}]})
    assert frame["timestamp"][0] == pd.Timestamp("2025-12-01 22:49:33.884", tz="UTC")
    assert str(frame["timestamp"][0]).endswith(":33.884000+00:00")


def alerts_matrix(*states: str) -> dict:
    """``ALERTS`` as a range query answers: a series per state, one sample per state here, 2 s apart."""
    return {"resultType": "matrix", "result": [
        {"metric": {"__name__": "ALERTS", "alertname": "ModelHighErrorRate", "alertstate": state},
         "values": [[1700000000 + 2 * index, "1"]]} for index, state in enumerate(states)]}


def test_wait_for_alert_state_returns_the_history_once_the_state_shows(monkeypatch):
    answers = iter([alerts_matrix(), alerts_matrix("pending"), alerts_matrix("pending", "firing")])
    queries = []
    client = PromClient("http://127.0.0.1:9")

    def get(path, params=None, what=""):
        queries.append(params["query"])
        return next(answers)

    monkeypatch.setattr(client, "_get", get)
    history = client.wait_for_alert_state("ModelHighErrorRate", "firing", since=1700000000, timeout=60, every=0,
                                          destination_workload="iris-predictor")
    assert history.sort_values("timestamp")["alertstate"].tolist() == ["pending", "firing"]
    assert queries[-1] == 'ALERTS{alertname="ModelHighErrorRate", destination_workload="iris-predictor"}'


def test_wait_for_alert_state_names_the_states_it_saw_when_it_gives_up(monkeypatch):
    client = PromClient("http://127.0.0.1:9")
    monkeypatch.setattr(client, "_get", lambda *a, **k: alerts_matrix("pending"))
    with pytest.raises(LabError, match="was not firing within 0 s .states seen: pending"):
        client.wait_for_alert_state("ModelHighErrorRate", "firing", since=1700000000, timeout=0, every=0)
