"""The local metrics-server: a pod's CPU from its container processes, and its CPU requests."""
from __future__ import annotations

import psutil

from lab_helpers.local.pod_metrics import pod_cpu_request_millicores, pod_cpu_seconds
from lab_helpers.processes import ProcessRecord


def pod(containers: dict, specs: list) -> dict:
    return {"spec": {"containers": specs}, "status": {"lab": {"containers": containers}}}


def test_cpu_seconds_of_a_running_container_and_none_without_one():
    me = psutil.Process()
    sum(range(200_000))  # spend a little CPU
    seconds = pod_cpu_seconds(pod({"kserve-container": ProcessRecord.of(me).to_json()}, []))
    assert seconds is not None and seconds >= me.cpu_times().user * 0.5
    assert pod_cpu_seconds(pod({}, [])) is None
    stale = {"pid": me.pid, "createTime": me.create_time() - 1000}  # a reused pid is not our container
    assert pod_cpu_seconds(pod({"kserve-container": stale}, [])) is None


def test_requests_are_summed_in_millicores():
    specs = [{"resources": {"requests": {"cpu": "100m"}}}, {"resources": {"requests": {"cpu": "0.5"}}}, {}]
    assert pod_cpu_request_millicores(pod({}, specs)) == 600.0
