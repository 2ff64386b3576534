"""The drift job: judging a window against a reference window, and what it pushes."""
from __future__ import annotations

import http.server
import threading
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from lab_helpers.drift import __main__ as cli
from lab_helpers.drift import job

RNG = np.random.default_rng(11)


def window(n: int, shares=(1 / 3, 1 / 3, 1 / 3), shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"e{i}" for i in range(n)], "time": pd.Timestamp.now(tz="UTC"),
                         "petal_length": RNG.normal(size=n) + shift,
                         "prediction": RNG.choice([0, 1, 2], size=n, p=list(shares))})


def test_a_clean_window_is_not_drift_and_a_changed_class_mix_is():
    reference = window(600)
    assert not job.judge(reference, window(300)).drifted
    verdict = job.judge(reference, window(300, shares=(0.2, 0.2, 0.6), shift=1.0))
    assert verdict.drifted and verdict.psi > 0.1
    assert verdict.features.set_index("feature").loc["petal_length", "p_adjusted"] < 0.01


def test_a_small_window_is_reported_not_judged_and_a_small_reference_is_refused():
    assert job.judge(window(600), window(20)) == job.Verdict(rows=20)
    assert not job.Verdict(rows=20).drifted
    with pytest.raises(ValueError, match="reference window holds 50 predictions"):
        job.judge(window(50), window(300))


class _Sink(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_PUT(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Sink.received.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT

    def log_message(self, *args):
        pass


@pytest.fixture
def pushgateway():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Sink.received.clear()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_run_pushes_its_gauges_grouped_by_service(monkeypatch, pushgateway):
    frames = iter([window(600), window(300, shares=(0.2, 0.2, 0.6))])
    monkeypatch.setattr(job, "read_window", lambda *args: next(frames))
    now = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)
    check = job.Check("http://receiver", "iris-logged", "lab", (now - timedelta(hours=2), now - timedelta(hours=1)),
                      timedelta(minutes=15))
    assert job.run(check, pushgateway, now=now).drifted
    method, path, body = _Sink.received[-1]
    assert method == "PUT" and path == "/metrics/job/prediction-drift/inference_service/iris-logged/namespace/lab"
    text = body.decode()
    assert "lab_prediction_drift_p_value" in text and "lab_prediction_drift_window_rows 300.0" in text


def test_unreachable_receiver_or_pushgateway_exit_1_with_one_line(monkeypatch, caplog):
    def down(*args):
        raise OSError("[Errno 111] Connection refused")

    monkeypatch.setattr(job, "read_window", down)
    code = cli.main(["check", "--receiver", "http://127.0.0.1:9", "--inference-service", "iris-logged",
                     "--reference-window", "2026-12-02T10:00:00Z/2026-12-02T11:00:00Z",
                     "--pushgateway", "http://127.0.0.1:9"])
    assert code == 1 and "drift receiver at http://127.0.0.1:9 could not be read" in caplog.text
    with pytest.raises(SystemExit):
        cli.main(["check", "--receiver", "r", "--inference-service", "i", "--reference-window", "yesterday",
                  "--pushgateway", "p"])


def test_a_proxy_request_reaches_the_backend_in_origin_form():
    from lab_helpers.gateway.proxy import origin_form

    assert origin_form("http://drift-receiver.lab.svc.cluster.local/events?isvc=a&since=1") == "/events?isvc=a&since=1"
    assert origin_form("http://pushgateway.monitoring.svc.cluster.local:9091") == "/"
    assert origin_form("/v2/models/iris/infer") == "/v2/models/iris/infer"
