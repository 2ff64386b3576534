"""The local Job controller: completions, parallelism, backoffLimit, activeDeadlineSeconds, with a fake clock.

Pods are finished here by writing their status as the kubelet would; the real kubelet's part is in
tests/integration/test_jobs.py.
"""
from __future__ import annotations

import asyncio
import re

import pytest
from fake_clock import Clock

from lab_helpers.batch import rfc3339
from lab_helpers.local.controllers.base import Context, PermanentError
from lab_helpers.local.controllers.jobs import JobController
from lab_helpers.local.controllers.workloads import GarbageCollector
from lab_helpers.local.store import Store

T0 = 1_900_000_000.0


@pytest.fixture
def world(tmp_path):
    store = Store(tmp_path / "store.sqlite")
    clock = Clock(T0)
    return store, JobController(Context(store, tmp_path), clock=clock), clock


def make_job(store, name="drift", restart="Never", **spec):
    return store.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "lab"},
                        "spec": {**spec, "template": {"metadata": {"labels": {"app": "drift"}}, "spec": {
                            "restartPolicy": restart,
                            "containers": [{"name": "main", "image": "python", "command": ["python", "-c", "0"]}]}}}})


def reconcile(store, controller, name="drift"):
    return asyncio.run(controller.reconcile(store.get("Job", "lab", name)))


def pods(store, phase=None):
    return [p for p in store.list("Pod", "lab") if phase is None or (p.get("status") or {}).get("phase") == phase]


def end(store, pod, phase, at, restarts=0):
    """Write the status the kubelet writes when the pod's container has exited."""
    state = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1, "finishedAt": rfc3339(at)}}
    store.set_status("Pod", "lab", pod["metadata"]["name"], {
        "phase": phase, "containerStatuses": [{"name": "main", "restartCount": restarts, "state": state}]})


def status(store, name="drift"):
    return store.get("Job", "lab", name)["status"]


def condition(store, name="drift"):
    return [(c["type"], c["status"], c["reason"], c["message"]) for c in status(store, name).get("conditions", [])]


def events(store, name="drift"):
    return [(e["type"], e["reason"], e["message"]) for e in store.events([("Job", "lab", name)])]


def test_a_job_runs_one_pod_named_and_labelled_as_upstream_and_completes(world):
    store, controller, clock = world
    job = make_job(store)
    assert reconcile(store, controller).requeue_after is None
    [pod] = pods(store)
    uid = job["metadata"]["uid"]
    assert re.fullmatch(r"drift-[bcdfghjklmnpqrstvwxz2456789]{5}", pod["metadata"]["name"])
    assert pod["metadata"]["labels"] == {"app": "drift", "job-name": "drift", "batch.kubernetes.io/job-name": "drift",
                                         "controller-uid": uid, "batch.kubernetes.io/controller-uid": uid}
    assert pod["metadata"]["ownerReferences"][0]["uid"] == uid
    assert status(store) == {"startTime": rfc3339(T0), "active": 1, "ready": 0, "succeeded": 0, "failed": 0}
    store.set_status("Pod", "lab", pod["metadata"]["name"],
                     {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})
    reconcile(store, controller)
    assert status(store)["ready"] == 1
    clock.now += 30
    end(store, pod, "Succeeded", clock.now)
    reconcile(store, controller)
    final = status(store)
    assert (final["active"], final["succeeded"], final["failed"]) == (0, 1, 0)
    assert final["completionTime"] == rfc3339(T0 + 30)
    assert condition(store) == [(kind, "True", "CompletionsReached", "Reached expected number of succeeded pods")
                                for kind in ("SuccessCriteriaMet", "Complete")]
    assert events(store) == [("Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}"),
                             ("Normal", "Completed", "Job completed")]


def test_completions_are_reached_with_at_most_parallelism_pods_at_a_time(world):
    store, controller, clock = world
    make_job(store, completions=3, parallelism=2)
    reconcile(store, controller)
    assert len(pods(store)) == 2
    end(store, pods(store)[0], "Succeeded", clock.now)
    reconcile(store, controller)
    assert len(pods(store)) == 3 and status(store)["active"] == 2  # one more: 3 - 1 succeeded, at most 2
    for pod in pods(store):
        if not (pod.get("status") or {}).get("phase"):
            end(store, pod, "Succeeded", clock.now)
    reconcile(store, controller)
    assert len(pods(store)) == 3                          # no fourth pod once completions are reached
    assert status(store)["succeeded"] == 3
    assert condition(store)[-1][:2] == ("Complete", "True")


def test_a_work_queue_job_completes_when_one_pod_succeeded_and_none_runs(world):
    store, controller, clock = world
    make_job(store, parallelism=2)  # no completions: the pods share a queue
    reconcile(store, controller)
    first, second = pods(store)
    end(store, first, "Succeeded", clock.now)
    reconcile(store, controller)
    assert len(pods(store)) == 2 and "conditions" not in status(store)  # the other is still working
    end(store, second, "Succeeded", clock.now)
    reconcile(store, controller)
    assert condition(store)[-1][:2] == ("Complete", "True")


def test_failed_pods_are_replaced_after_a_growing_backoff_until_the_backoff_limit(world):
    store, controller, clock = world
    make_job(store, backoffLimit=2)
    reconcile(store, controller)
    end(store, pods(store)[0], "Failed", clock.now)
    assert reconcile(store, controller).requeue_after == pytest.approx(1.0)  # back-off before the replacement
    assert len(pods(store)) == 1 and status(store)["failed"] == 1
    clock.now += 1
    reconcile(store, controller)
    assert len(pods(store, "Failed")) == 1 and len(pods(store)) == 2
    [second] = [p for p in pods(store) if not p.get("status")]
    end(store, second, "Failed", clock.now)
    assert reconcile(store, controller).requeue_after == pytest.approx(2.0)  # doubled
    clock.now += 2
    reconcile(store, controller)
    [third] = [p for p in pods(store) if not p.get("status")]
    end(store, third, "Failed", clock.now)
    reconcile(store, controller)  # 3 failures > backoffLimit 2
    assert len(pods(store)) == 3
    assert status(store)["failed"] == 3 and status(store)["active"] == 0 and "completionTime" not in status(store)
    assert condition(store) == [(kind, "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
                                for kind in ("FailureTarget", "Failed")]
    assert events(store)[-1] == ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    clock.now += 60
    reconcile(store, controller)
    assert len(pods(store)) == 3  # a finished Job makes no more pods


def test_under_on_failure_container_restarts_count_against_the_backoff_limit(world):
    store, controller, clock = world
    make_job(store, restart="OnFailure", backoffLimit=2)
    reconcile(store, controller)
    [pod] = pods(store)
    store.set_status("Pod", "lab", pod["metadata"]["name"],
                     {"phase": "Running", "containerStatuses": [{"name": "main", "restartCount": 1}]})
    reconcile(store, controller)
    assert "conditions" not in status(store)
    store.set_status("Pod", "lab", pod["metadata"]["name"],
                     {"phase": "Running", "containerStatuses": [{"name": "main", "restartCount": 2}]})
    reconcile(store, controller)
    assert condition(store)[-1][:3] == ("Failed", "True", "BackoffLimitExceeded")
    assert pods(store) == []  # the restarting pod is deleted
    assert status(store)["failed"] == 1


def test_the_active_deadline_deletes_running_pods_and_fails_the_job(world):
    store, controller, clock = world
    make_job(store, activeDeadlineSeconds=30)
    assert reconcile(store, controller).requeue_after == pytest.approx(30)
    [pod] = pods(store)
    clock.now += 10
    assert reconcile(store, controller).requeue_after == pytest.approx(20)  # level-triggered: time left
    clock.now += 20
    reconcile(store, controller)
    assert pods(store) == []
    assert status(store)["failed"] == 1 and status(store)["active"] == 0
    assert condition(store) == [(kind, "True", "DeadlineExceeded", "Job was active longer than specified deadline")
                                for kind in ("FailureTarget", "Failed")]
    assert events(store)[-2:] == [("Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}"),
                                  ("Warning", "DeadlineExceeded", "Job was active longer than specified deadline")]


def test_restart_policy_always_is_refused_with_the_api_servers_words(world):
    store, controller, _ = world
    make_job(store, restart="Always")
    with pytest.raises(PermanentError, match='Unsupported value: "Always"'):
        reconcile(store, controller)
    assert pods(store) == []
    assert events(store)[-1][:2] == ("Warning", "FailedCreate")


def test_deleting_a_job_lets_the_garbage_collector_take_its_pods(world):
    store, controller, _ = world
    make_job(store, completions=2, parallelism=2)
    reconcile(store, controller)
    assert len(pods(store)) == 2
    store.delete("Job", "lab", "drift")
    assert GarbageCollector(store).collect() == 2
    assert pods(store) == []
