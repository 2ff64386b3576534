"""The CronJob controller of the local target: a Job per schedule time, history limits, concurrency policy.

After kubernetes pkg/controller/cronjob/cronjob_controllerv2.go, level-triggered: each reconcile
looks at the CronJob's Jobs and its status, finds the most recent schedule time not yet run (after
``lastScheduleTime``, or the creation time, and no older than ``startingDeadlineSeconds``), and
creates ``<cronjob>-<scheduled minutes since the epoch>`` for it unless ``suspend`` is set or
``concurrencyPolicy: Forbid`` finds one still active (``Replace`` deletes the active ones first);
then it deletes finished Jobs beyond ``successfulJobsHistoryLimit``/``failedJobsHistoryLimit``
(oldest first) and requeues itself for the next schedule time. Events carry upstream's reasons
and wording, including ``UnexpectedJob`` for a running Job it did not schedule (one made with
``kubectl create job --from=cronjob/…`` gets it on a cluster too). Schedules are parsed by croniter
(the 5-field syntax and ``@hourly``-style macros that upstream's robfig/cron reads), in
``spec.timeZone`` when set. The clock is injectable, so tests need not wait for a minute to pass.

A schedule time older than ``startingDeadlineSeconds`` is skipped without a Job or an event, as
upstream's mostRecentScheduleTime skips it. Simplified, and said here: no ``TooManyMissedTimes``
warning (only the most recent missed time is run, as upstream does), and no ``CRON_TZ=`` prefix in
``schedule``.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from ...batch import job_condition, rfc3339, scheduled_job, scheduled_job_name
from ...scaling.stamps import epoch
from .base import DONE, Controller, Result, ns, owned_by

NEXT_SCHEDULE_DELTA = 0.1  # upstream requeues 100 ms after the schedule time, against clock skew
HISTORY_DEFAULTS = {"Complete": ("successfulJobsHistoryLimit", 3), "Failed": ("failedJobsHistoryLimit", 1)}


class ScheduleError(ValueError):
    """``spec.schedule`` or ``spec.timeZone`` cannot be read; the event says which."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


def parse_zone(cronjob: dict[str, Any]) -> Any:
    name = cronjob["spec"].get("timeZone")
    if not name:
        return timezone.utc  # the lab's controller manager runs in UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError("UnknownTimeZone", f'invalid timeZone: "{name}": {exc}') from None


def schedule_times(cronjob: dict[str, Any], now: float) -> tuple[float | None, float]:
    """(the most recent schedule time at or before `now`, the next one after it), in epoch seconds."""
    expression, zone = cronjob["spec"]["schedule"], parse_zone(cronjob)
    at = datetime.fromtimestamp(int(now) + 1, zone)  # croniter's get_prev is strictly before its start
    try:
        previous = croniter(expression, at).get_prev(datetime).timestamp()
        following = croniter(expression, datetime.fromtimestamp(now, zone)).get_next(datetime).timestamp()
    except (CroniterError, ValueError) as exc:
        raise ScheduleError("UnparseableSchedule", f'unparseable schedule: "{expression}" : {exc}') from None
    return previous, following


def unmet_schedule_time(cronjob: dict[str, Any], now: float) -> tuple[float | None, float]:
    """(the schedule time to run now, if any; the next schedule time), as upstream's mostRecentScheduleTime."""
    status = cronjob.get("status") or {}
    earliest = epoch(status.get("lastScheduleTime") or cronjob["metadata"]["creationTimestamp"])
    deadline = cronjob["spec"].get("startingDeadlineSeconds")
    if deadline is not None:
        earliest = max(earliest, now - deadline)
    previous, following = schedule_times(cronjob, now)
    return (previous if previous is not None and previous > earliest else None), following


def job_ref(job: dict[str, Any]) -> dict[str, Any]:
    meta = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "namespace": meta.get("namespace"),
            "uid": meta["uid"], "resourceVersion": meta.get("resourceVersion")}


def start_order(job: dict[str, Any]) -> tuple[bool, float, str]:
    """Upstream's byJobStartTime: by ``status.startTime``, Jobs not started last, then by name."""
    started = (job.get("status") or {}).get("startTime")
    return started is None, epoch(started) if started else 0.0, job["metadata"]["name"]


class CronJobController(Controller):
    """Creates a CronJob's Jobs on schedule, keeps its history short and its status current."""

    kinds = ("CronJob",)
    owns = ("Job",)

    def __init__(self, ctx, clock: Callable[[], float] = time.time):
        super().__init__(ctx)
        self.clock = clock

    async def reconcile(self, cronjob: dict[str, Any]) -> Result:
        now = self.clock()
        jobs = [j for j in self.store.list("Job", ns(cronjob)) if owned_by(j, cronjob)]
        status = dict(cronjob.get("status") or {})
        self._observe(cronjob, status, jobs)
        requeue = self._schedule(cronjob, status, now)
        self._clean_up(cronjob, status, jobs)
        self.store.set_status("CronJob", ns(cronjob), cronjob["metadata"]["name"],
                              {k: v for k, v in status.items() if v})
        return Result(requeue_after=requeue) if requeue is not None else DONE

    def _observe(self, cronjob: dict[str, Any], status: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        """Move finished Jobs out of ``status.active``, note the last success, drop Jobs gone missing."""
        active = list(status.get("active") or [])
        uids = {ref["uid"] for ref in active}
        for job in jobs:
            name, outcome = job["metadata"]["name"], job_condition(job)
            if job["metadata"]["uid"] not in uids and outcome is None:
                self.store.record_event(cronjob, "UnexpectedJob",
                                        f"Saw a job that the controller did not create or forgot: {name}", "Warning")
            elif job["metadata"]["uid"] in uids and outcome is not None:
                active = [ref for ref in active if ref["uid"] != job["metadata"]["uid"]]
                self.store.record_event(cronjob, "SawCompletedJob", f"Saw completed job: {name}, status: {outcome}")
            completed = (job.get("status") or {}).get("completionTime")
            if outcome == "Complete" and completed and (
                    not status.get("lastSuccessfulTime") or epoch(completed) > epoch(status["lastSuccessfulTime"])):
                status["lastSuccessfulTime"] = completed
        present = {j["metadata"]["uid"] for j in jobs}
        for ref in [r for r in active if r["uid"] not in present]:
            active.remove(ref)
            self.store.record_event(cronjob, "MissingJob", f"Active job went missing: {ref['name']}")
        status["active"] = active

    def _schedule(self, cronjob: dict[str, Any], status: dict[str, Any], now: float) -> float | None:
        """Create the Job of the schedule time that is due, if policy allows; seconds until the next one."""
        spec = cronjob["spec"]
        if spec.get("suspend"):
            return None
        try:
            zone = parse_zone(cronjob)
            due, following = unmet_schedule_time({**cronjob, "status": status}, now)
        except ScheduleError as exc:
            self.store.record_event(cronjob, exc.reason, str(exc), "Warning")
            return None
        requeue = following - now + NEXT_SCHEDULE_DELTA
        if due is None:
            return requeue
        name = scheduled_job_name(cronjob, due)
        if any(ref["name"] == name for ref in status["active"]) or status.get("lastScheduleTime") == rfc3339(due):
            return requeue
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and status["active"]:
            self.store.record_event(cronjob, "JobAlreadyActive", "Not starting job because prior execution is "
                                                                  "running and concurrency policy is Forbid")
            return requeue
        if policy == "Replace":
            for ref in status["active"]:
                self._delete_job(cronjob, ref["name"])
            status["active"] = []
        existing = self.store.find("Job", ns(cronjob), name)
        if existing is None:
            existing = self.store.apply(scheduled_job(cronjob, due, zone))
            self.store.record_event(cronjob, "SuccessfulCreate", f"Created job {name}")
        elif not owned_by(existing, cronjob):
            return requeue  # someone else's Job of that name: leave it, as upstream does
        status["active"] = [*status["active"], job_ref(existing)]
        status["lastScheduleTime"] = rfc3339(due)
        return requeue

    def _clean_up(self, cronjob: dict[str, Any], status: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        """Delete the oldest finished Jobs beyond the history limits (the API server's defaults: 3 and 1)."""
        for outcome, (field, default) in HISTORY_DEFAULTS.items():
            limit = int(cronjob["spec"].get(field, default))
            done = sorted((j for j in jobs if job_condition(j) == outcome), key=start_order)
            for job in done[: max(len(done) - limit, 0)]:
                self._delete_job(cronjob, job["metadata"]["name"])
                status["active"] = [r for r in status["active"] if r["uid"] != job["metadata"]["uid"]]

    def _delete_job(self, cronjob: dict[str, Any], name: str) -> None:
        """The Job goes, and the garbage collector takes its pods (they are owned by it)."""
        if self.store.delete("Job", ns(cronjob), name):
            self.store.record_event(cronjob, "SuccessfulDelete", f"Deleted job {name}")
