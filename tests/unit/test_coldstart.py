"""A cold start taken apart from recorded objects: local-shaped (microseconds, a hold record) and cluster-shaped
(whole seconds, kubelet-timestamped log lines, no hold)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lab_helpers.scaling.coldstart import MOMENTS, Timeline, cold_timeline, model_loaded_at
from lab_helpers.scaling.stamps import epoch, event_epoch

T0 = datetime(2026, 12, 2, 19, 0, 0, tzinfo=timezone.utc).timestamp()


def stamp(seconds: float, micro: bool = True) -> str:
    moment = datetime.fromtimestamp(T0 + seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def local_line(seconds: float, text: str) -> str:
    """KServe's log format: local time, milliseconds, no zone."""
    moment = datetime.fromtimestamp(T0 + seconds)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} 4242 kserve INFO {text}"


def pod(init_start: float, init_end: float, runtime_start: float, ready: float, micro: bool = True) -> dict:
    return {"metadata": {"name": "p"}, "status": {
        "initContainerStatuses": [{"name": "storage-initializer", "state": {"terminated": {
            "exitCode": 0, "startedAt": stamp(init_start, micro), "finishedAt": stamp(init_end, micro)}}}],
        "containerStatuses": [{"name": "kserve-container", "state": {"running": {
            "startedAt": stamp(runtime_start, micro)}}}],
        "conditions": [{"type": "Initialized", "status": "True", "lastTransitionTime": stamp(init_end, micro)},
                       {"type": "Ready", "status": "True", "lastTransitionTime": stamp(ready, micro)}]}}


def local_trial() -> Timeline:
    log = "\n".join([local_line(1.0, "Registering model: other"), local_line(3.25, "Registering model: iris-s2z"),
                     local_line(3.3, "Starting uvicorn with 1 workers")])
    return cold_timeline(
        sent=T0, answered=T0 + 4.12, pod=pod(0.05, 0.75, 0.76, 4.0),
        activation={"reason": "KEDAScaleTargetActivated", "eventTime": stamp(0.02)},
        pod_created={"reason": "SuccessfulCreate", "eventTime": stamp(0.03)},
        runtime_log=log, model="iris-s2z",
        hold={"host": "h", "held_at": T0 + 0.01, "released_at": T0 + 4.1, "outcome": "forwarded"})


def test_every_moment_of_a_local_cold_start_is_placed_in_order():
    timeline = local_trial()
    assert list(timeline.spans()) == list(MOMENTS)
    assert timeline.moments["model loaded"] == pytest.approx(T0 + 3.25, abs=1e-3)
    assert timeline.spans()["ready"] == pytest.approx(0.75, abs=1e-3)
    assert sum(timeline.spans().values()) == pytest.approx(timeline.total_s)


def test_runtime_side_is_first_container_start_to_ready_and_the_rest_is_activation_overhead():
    timeline = local_trial()
    assert timeline.total_s == pytest.approx(4.12)
    assert timeline.runtime_s == pytest.approx(3.95, abs=1e-6)
    assert timeline.overhead_s == pytest.approx(0.17, abs=1e-6)


def test_without_an_init_container_the_runtime_side_starts_at_the_model_server():
    recorded = pod(0.05, 0.75, 0.76, 4.0)
    del recorded["status"]["initContainerStatuses"]
    timeline = cold_timeline(sent=T0, answered=T0 + 4.1, pod=recorded, activation=None, pod_created=None,
                             runtime_log="", model="m")
    assert timeline.runtime_s == pytest.approx(3.24, abs=1e-6)
    assert "model loaded" not in timeline.moments and "request held" not in timeline.moments


def test_a_cluster_cold_start_from_second_stamps_and_a_kubelet_timestamped_mlserver_log():
    log = ("2026-12-02T19:00:02.123456789Z 2026-12-02 19:00:02,120 [mlserver] INFO - Loaded model 'iris' "
           "succesfully.\n")
    timeline = cold_timeline(
        sent=T0 + 0.4, answered=T0 + 3.6, pod=pod(1, 1, 1, 3, micro=False),
        activation={"reason": "KEDAScaleTargetActivated", "firstTimestamp": stamp(0, micro=False)},
        pod_created={"reason": "SuccessfulCreate", "firstTimestamp": stamp(1, micro=False)},
        runtime_log=log, model="iris")
    assert timeline.moments["model loaded"] == pytest.approx(T0 + 2.123456)   # the kubelet's stamp, not MLServer's
    spans = timeline.spans()
    assert "request held" not in spans and "request forwarded" not in spans  # the add-on records no hold
    assert spans["scale decision"] == 0.0     # stamped 19:00:00, before the send at .4: taken as at it
    assert all(value >= 0 for value in spans.values())
    assert timeline.runtime_s == 2.0 and timeline.overhead_s == pytest.approx(1.2)


def test_model_loaded_needs_the_models_own_line_and_a_stamp_to_place_it():
    assert model_loaded_at("Registering model: iris-v2\n", "iris") is None
    with pytest.raises(ValueError, match="Registering model: iris. carries no timestamp"):
        model_loaded_at("INFO Registering model: iris\n", "iris")


def test_stamps_name_what_they_could_not_read():
    assert epoch("2026-12-02T19:00:00Z") == T0
    assert event_epoch({"eventTime": "2026-12-02T19:00:00.500000Z", "firstTimestamp": "2026-12-02T19:00:00Z"}) \
        == T0 + 0.5
    with pytest.raises(ValueError, match="'yesterday' is not an RFC 3339 timestamp"):
        epoch("yesterday")
    with pytest.raises(ValueError, match="'Started'.*has no timestamp"):
        event_epoch({"reason": "Started", "involvedObject": {"kind": "Pod"}})
