"""The local CronJob controller with a fake clock: schedule, concurrency policy, history limits, suspend, on demand."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from fake_clock import Clock

from lab_helpers.batch import INSTANTIATE, SCHEDULED_AT, manual_job, rfc3339
from lab_helpers.local.controllers.base import Context
from lab_helpers.local.controllers.cronjobs import CronJobController, schedule_times
from lab_helpers.local.store import Store

T0 = datetime(2026, 12, 2, 12, 0, 30, tzinfo=timezone.utc).timestamp()  # half a minute past noon
NOON = T0 - 30


@pytest.fixture
def world(tmp_path):
    store = Store(tmp_path / "store.sqlite")
    clock = Clock(T0)
    return store, CronJobController(Context(store, tmp_path), clock=clock), clock


def make_cronjob(store, schedule="*/5 * * * *", **spec):
    store.apply({"apiVersion": "batch/v1", "kind": "CronJob",
                           "metadata": {"name": "drift", "namespace": "lab"},
                           "spec": {"schedule": schedule, **spec, "jobTemplate": {
                               "metadata": {"labels": {"app": "drift"}, "annotations": {"team": "ml"}},
                               "spec": {"backoffLimit": 1, "template": {"spec": {
                                   "restartPolicy": "Never",
                                   "containers": [{"name": "main", "image": "python"}]}}}}}})
    # created at T0 (the store stamps the real time): schedule times after it are due
    store.db.execute("UPDATE objects SET body=json_set(body, '$.metadata.creationTimestamp', ?) WHERE kind='CronJob'",
                     (rfc3339(T0),))
    return store.get("CronJob", "lab", "drift")


def reconcile(store, controller):
    return asyncio.run(controller.reconcile(store.get("CronJob", "lab", "drift")))


def run_at(world, *offsets):
    """Reconcile at each of these times (seconds past noon); the last reconcile's result."""
    store, controller, clock = world
    for offset in offsets:
        clock.now = NOON + offset
        result = reconcile(store, controller)
    return result


def job_names(store):
    return [j["metadata"]["name"] for j in store.list("Job", "lab")]


def finish(store, name, outcome, at):
    store.set_status("Job", "lab", name, {
        "startTime": rfc3339(at - 10), **({"completionTime": rfc3339(at)} if outcome == "Complete" else {}),
        "conditions": [{"type": outcome, "status": "True"}]})


def status(store):
    return store.get("CronJob", "lab", "drift").get("status") or {}


def reasons(store):
    return [e["reason"] for e in store.events([("CronJob", "lab", "drift")])]


def test_schedule_times_include_the_current_minute_and_follow_the_time_zone():
    cronjob = {"spec": {"schedule": "*/5 * * * *"}}
    assert schedule_times(cronjob, NOON) == (NOON, NOON + 300)
    assert schedule_times(cronjob, NOON + 299) == (NOON, NOON + 300)
    zoned = {"spec": {"schedule": "0 9 * * *", "timeZone": "Europe/Berlin"}}
    _, following = schedule_times(zoned, NOON)
    assert datetime.fromtimestamp(following, timezone.utc).hour == 8  # 09:00 CET is 08:00 UTC in December


def test_nothing_runs_before_the_first_schedule_time_then_a_job_named_by_its_minute(world):
    store, controller, _ = world
    cronjob = make_cronjob(store)
    assert reconcile(store, controller).requeue_after == pytest.approx(NOON + 300 - T0 + 0.1)
    assert job_names(store) == []
    run_at(world, 300.1)
    name = f"drift-{int(NOON + 300) // 60}"
    assert job_names(store) == [name]
    job = store.get("Job", "lab", name)
    assert job["metadata"]["labels"] == {"app": "drift"}
    assert job["metadata"]["annotations"] == {SCHEDULED_AT: "2026-12-02T12:05:00Z", "team": "ml"}
    assert job["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "drift",
                                                   "uid": cronjob["metadata"]["uid"], "controller": True,
                                                   "blockOwnerDeletion": True}]
    assert job["spec"]["backoffLimit"] == 1
    assert status(store)["lastScheduleTime"] == "2026-12-02T12:05:00Z"
    assert [ref["name"] for ref in status(store)["active"]] == [name]
    assert reasons(store) == ["SuccessfulCreate"]
    reconcile(store, controller)  # the same schedule time again: no second Job
    assert job_names(store) == [name]


def test_a_finished_job_leaves_active_and_sets_last_successful_time(world):
    store, controller, _ = world
    make_cronjob(store)
    run_at(world, 300.1)
    [name] = job_names(store)
    finish(store, name, "Complete", NOON + 320)
    reconcile(store, controller)
    assert "active" not in status(store)
    assert status(store)["lastSuccessfulTime"] == rfc3339(NOON + 320)
    assert reasons(store)[-1] == "SawCompletedJob"
    assert store.events([("CronJob", "lab", "drift")])[-1]["message"] == f"Saw completed job: {name}, status: Complete"


def test_forbid_skips_a_schedule_while_a_job_runs_and_runs_it_late_once_free(world):
    store, _, _ = world
    make_cronjob(store, concurrencyPolicy="Forbid")
    run_at(world, 300.1, 600.1)
    assert len(job_names(store)) == 1
    assert reasons(store)[-1] == "JobAlreadyActive"
    finish(store, job_names(store)[0], "Complete", NOON + 610)
    run_at(world, 615)  # 12:10 is still unmet and there is no starting deadline: it runs now
    assert f"drift-{int(NOON + 600) // 60}" in job_names(store)


def test_replace_deletes_the_running_job_before_starting_the_next(world):
    store, _, _ = world
    make_cronjob(store, concurrencyPolicy="Replace")
    run_at(world, 300.1, 600.1)
    assert job_names(store) == [f"drift-{int(NOON + 600) // 60}"]
    assert reasons(store)[-2:] == ["SuccessfulDelete", "SuccessfulCreate"]
    assert [ref["name"] for ref in status(store)["active"]] == job_names(store)


def test_allow_runs_jobs_side_by_side(world):
    store, _, _ = world
    make_cronjob(store)
    run_at(world, 300.1, 600.1)
    assert len(job_names(store)) == 2 and len(status(store)["active"]) == 2


def test_history_limits_keep_the_newest_finished_jobs(world):
    store, controller, clock = world
    make_cronjob(store, successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1)
    made = []
    for minutes in (5, 10, 15, 20, 25):
        run_at(world, minutes * 60 + 0.1)
        made.append(f"drift-{int(NOON + minutes * 60) // 60}")
        finish(store, made[-1], "Failed" if minutes in (5, 10) else "Complete", clock.now + 5)
    clock.now += 10
    reconcile(store, controller)
    assert job_names(store) == sorted([made[1], made[3], made[4]])  # newest failed one, newest two successful
    assert reasons(store).count("SuccessfulDelete") == 2


def test_suspend_stops_scheduling_without_requeue(world):
    store, _, _ = world
    make_cronjob(store, suspend=True)
    assert run_at(world, 300.1).requeue_after is None
    assert job_names(store) == []


def test_a_schedule_time_past_the_starting_deadline_is_skipped(world):
    store, _, _ = world
    make_cronjob(store, startingDeadlineSeconds=200)
    run_at(world, 300 + 100)  # 100 s late: still within 200 s
    assert len(job_names(store)) == 1
    # the daemon was down: 12:10 is 250 s in the past, beyond the deadline; on to 12:15
    assert run_at(world, 600 + 250).requeue_after == pytest.approx(50.1)
    assert len(job_names(store)) == 1
    assert status(store)["lastScheduleTime"] == rfc3339(NOON + 300)


def test_an_unparseable_schedule_is_an_event_and_no_requeue(world):
    store, controller, _ = world
    make_cronjob(store, schedule="61 * * * *")
    assert reconcile(store, controller).requeue_after is None
    [event] = store.events([("CronJob", "lab", "drift")])
    assert (event["type"], event["reason"]) == ("Warning", "UnparseableSchedule")
    assert event["message"].startswith('unparseable schedule: "61 * * * *"')


def test_a_job_made_on_demand_is_owned_not_scheduled_and_counts_as_a_success(world):
    store, controller, _ = world
    cronjob = make_cronjob(store)
    job = manual_job(cronjob, "drift-now")
    assert job["metadata"]["annotations"] == {INSTANTIATE: "manual", "team": "ml"}
    assert job["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "drift",
                                                   "uid": cronjob["metadata"]["uid"], "controller": True}]
    store.apply(job)
    reconcile(store, controller)
    assert reasons(store) == ["UnexpectedJob"]  # upstream says so too: the controller did not schedule it
    assert "lastScheduleTime" not in status(store)
    finish(store, "drift-now", "Complete", T0 + 5)
    reconcile(store, controller)
    assert status(store)["lastSuccessfulTime"] == rfc3339(T0 + 5)
    assert manual_job(cronjob)["metadata"]["name"].startswith("drift-manual-")


def test_a_deleted_active_job_is_dropped_from_status(world):
    store, controller, _ = world
    make_cronjob(store)
    run_at(world, 300.1)
    store.delete("Job", "lab", job_names(store)[0])
    reconcile(store, controller)
    assert "active" not in status(store)
    assert reasons(store)[-1] == "MissingJob"
