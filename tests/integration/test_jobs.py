"""Jobs and CronJobs on the local target with real processes: the daemon's Job and CronJob controllers and kubelet."""
from __future__ import annotations

import time

import pytest

import lab_helpers
from lab_helpers.batch import INSTANTIATE
from lab_helpers.errors import NotReady

pytestmark = pytest.mark.integration


def job_spec(code: str, **spec) -> dict:
    return {**spec, "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                          "containers": [{"name": "main", "image": "python",
                                                          "command": ["python", "-c", code]}]}}}


@pytest.fixture(scope="module")
def lab(local_home):
    return lab_helpers.connect("local")


def pods_of(lab, job: str) -> list[dict]:
    return lab.list("Pod", labels={"batch.kubernetes.io/job-name": job})


def test_a_job_runs_its_pods_to_completions(lab):
    lab.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "hello"},
               "spec": job_spec("print('drift window ok')", completions=2)})
    job = lab.wait_for("Job", "hello", "Complete", timeout=60)
    assert (job["status"]["succeeded"], job["status"]["failed"], job["status"]["active"]) == (2, 0, 0)
    assert job["status"]["completionTime"] >= job["status"]["startTime"]
    pods = pods_of(lab, "hello")
    assert [p["status"]["phase"] for p in pods] == ["Succeeded", "Succeeded"]
    assert lab.container_log(pods[0]["metadata"]["name"], "main").strip() == "drift window ok"
    reasons = [e["reason"] for e in lab.events("Job", "hello", children=False)]
    assert reasons == ["SuccessfulCreate", "SuccessfulCreate", "Completed"]


def test_a_failing_job_stops_at_its_backoff_limit(lab):
    lab.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "broken"},
               "spec": job_spec("raise SystemExit(3)", backoffLimit=1)})
    with pytest.raises(NotReady, match="BackoffLimitExceeded: Job has reached the specified backoff limit"):
        lab.wait_for("Job", "broken", "Complete", timeout=60)  # raised when it fails, not at the timeout
    job = lab.wait_for("Job", "broken", "Failed", timeout=5)
    [failed] = [c for c in job["status"]["conditions"] if c["type"] == "Failed"]
    assert (failed["reason"], failed["message"]) == ("BackoffLimitExceeded",
                                                     "Job has reached the specified backoff limit")
    assert job["status"]["failed"] == 2  # the first try and one retry: more failures than backoffLimit 1
    pods = pods_of(lab, "broken")
    assert len(pods) == 2
    assert {p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods} == {3}


def test_a_cronjob_job_made_on_demand_runs_and_goes_with_its_cronjob(lab):
    lab.apply({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
               "spec": {"schedule": "0 3 1 1 *", "jobTemplate": {"spec": job_spec("print('on demand')")}}})
    job = lab.run_cronjob_now("nightly", job_name="nightly-now")
    assert job["metadata"]["annotations"][INSTANTIATE] == "manual"
    lab.wait_for("Job", "nightly-now", "Complete", timeout=60)
    deadline = time.monotonic() + 10
    while "lastSuccessfulTime" not in (lab.get("CronJob", "nightly").get("status") or {}):
        assert time.monotonic() < deadline, "the CronJob never saw its Job's success"
        time.sleep(0.2)
    assert lab.list("Job") and pods_of(lab, "nightly-now")
    lab.delete("CronJob", "nightly")
    deadline = time.monotonic() + 10
    while [j for j in lab.list("Job") if j["metadata"]["name"] == "nightly-now"] or pods_of(lab, "nightly-now"):
        assert time.monotonic() < deadline, "the garbage collector left the CronJob's Job or its pod"
        time.sleep(0.2)
