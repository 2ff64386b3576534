"""run_cronjob_now on the kubernetes target (kmock): the Job ``kubectl create job --from=cronjob/…`` makes."""
from __future__ import annotations

import io
import time

import pytest
from kube_fixtures import MockCluster, cluster, is_dry_run_apply, is_real_apply  # noqa: F401  (cluster: fixture)

from lab_helpers.errors import NotReady

CRONJOB = {"metadata": {"name": "drift", "namespace": "lab", "uid": "3f6c-cron-uid"},
           "spec": {"schedule": "*/15 * * * *", "concurrencyPolicy": "Forbid", "jobTemplate": {
               "metadata": {"labels": {"app": "drift"}, "annotations": {"team": "ml"}},
               "spec": {"backoffLimit": 2, "template": {"spec": {
                   "restartPolicy": "Never",
                   "containers": [{"name": "drift", "image": "serving-lab/drift:0.1",
                                   "command": ["python", "-m", "lab_helpers.drift"]}]}}}}}}


def test_run_cronjob_now_dry_runs_then_applies_the_template_as_an_owned_manual_job(cluster: MockCluster) -> None:
    cluster.put("CronJob", CRONJOB)
    job = cluster.lab().run_cronjob_now("drift", job_name="drift-now")
    [dry], [real] = cluster.requests(is_dry_run_apply), cluster.requests(is_real_apply)
    assert dry.url.path == real.url.path == "/apis/batch/v1/namespaces/lab/jobs/drift-now"
    assert real.data == {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "drift-now", "namespace": "lab", "labels": {"app": "drift"},
                     "annotations": {"cronjob.kubernetes.io/instantiate": "manual", "team": "ml"},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "drift",
                                          "uid": "3f6c-cron-uid", "controller": True}]},
        "spec": CRONJOB["spec"]["jobTemplate"]["spec"]}
    assert job["metadata"]["name"] == "drift-now"
    assert cluster.stored("Job", "lab", "drift-now")["spec"]["backoffLimit"] == 2


def test_without_a_name_the_job_gets_a_fresh_one(cluster: MockCluster) -> None:
    cluster.put("CronJob", CRONJOB)
    lab = cluster.lab()
    first, second = lab.run_cronjob_now("drift"), lab.run_cronjob_now("drift")
    assert first["metadata"]["name"].startswith("drift-manual-")
    assert first["metadata"]["name"] != second["metadata"]["name"]  # a second run never re-applies the first


def test_wait_for_a_job_reads_its_complete_condition(cluster: MockCluster) -> None:
    cluster.put("CronJob", CRONJOB)
    lab = cluster.lab(progress=io.StringIO())
    lab.run_cronjob_now("drift", job_name="drift-now")
    timer = cluster.patch_status_later(0.3, "Job", "lab", "drift-now", {
        "succeeded": 1, "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}]})
    done = lab.wait_for("Job", "drift-now", "Complete", timeout=20)
    timer.join()
    assert done["status"]["succeeded"] == 1


def test_waiting_for_complete_stops_at_once_when_the_job_failed(cluster: MockCluster) -> None:
    cluster.put("CronJob", CRONJOB)
    lab = cluster.lab(progress=io.StringIO())
    lab.run_cronjob_now("drift", job_name="drift-now")
    timer = cluster.patch_status_later(0.3, "Job", "lab", "drift-now", {"failed": 3, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit"}]})
    started = time.monotonic()
    with pytest.raises(NotReady) as raised:
        lab.wait_for("Job", "drift-now", "Complete", timeout=30)
    timer.join()
    assert time.monotonic() - started < 10  # not the 30 s timeout
    assert (raised.value.diagnosis.reason, raised.value.diagnosis.runbook) == ("BackoffLimitExceeded",
                                                                               "runbooks/job-failed.md")
    assert "Job has reached the specified backoff limit" in str(raised.value)
