"""The Job controller of the local target: pods run to completion, retried up to ``backoffLimit``.

After kubernetes pkg/controller/job/job_controller.go, level-triggered from the Job's pods: it keeps
``min(parallelism, completions - succeeded)`` pods running, named ``<job>-<5 chars>`` with the
``job-name``/``controller-uid`` labels (and their ``batch.kubernetes.io/`` twins), and counts
them in ``status.active`` (``ready``: those passing readiness); a Job is
``Complete`` (reason ``CompletionsReached``, event ``Completed``) once ``completions`` pods
succeeded, or with no ``completions`` (a work queue) once one succeeded and none is left running;
it is ``Failed`` with ``BackoffLimitExceeded`` when more pods failed than ``backoffLimit`` (under
``restartPolicy: OnFailure`` the container restarts of its running pods count too), or with ``DeadlineExceeded``
once it has been active ``activeDeadlineSeconds`` (its running pods are then deleted and counted
as failed). A failed pod is replaced after a back-off that doubles per failure.

Simplified, and said here: no Indexed completion mode, ``suspend``, ``podFailurePolicy``,
``successPolicy``, ``ttlSecondsAfterFinished`` or pod-tracking finalizers — ``succeeded`` and
``failed`` are counted from the pods that exist, so deleting a finished pod of a running Job
un-counts it; the interim ``SuccessCriteriaMet``/``FailureTarget`` condition is written in the same
status update as ``Complete``/``Failed`` (upstream: first, then the final one once the pods are
gone); the replacement back-off is the local kubelet's 1 s doubling to 16 s (upstream: 10 s
doubling to 6 min).
"""
from __future__ import annotations

import time
from typing import Any, Callable

from ...batch import job_condition, random_suffix, rfc3339
from ...scaling.stamps import epoch
from ..kubelet import BACKOFF_CAP, BACKOFF_START
from ..pods import finished, pod_ready
from .base import DONE, Controller, PermanentError, Result, ns, owned_by, owner_ref

JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
CONTROLLER_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
DEFAULT_BACKOFF_LIMIT = 6  # the API server's default for spec.backoffLimit
# Kubernetes 1.31+ writes these first, with the same reason, then the final condition once the pods are gone.
INTERIM = {"Complete": "SuccessCriteriaMet", "Failed": "FailureTarget"}
BACKOFF_LIMIT_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"


def phase(pod: dict[str, Any]) -> str:
    return (pod.get("status") or {}).get("phase", "Pending")


def restarts(pod: dict[str, Any]) -> int:
    status = pod.get("status") or {}
    return sum(int(s.get("restartCount") or 0)
               for s in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])])


def finished_at(pod: dict[str, Any]) -> float | None:
    """When the pod's last container ended (its failure time, for the replacement back-off)."""
    stamps = [(s.get("state") or {}).get("terminated", {}).get("finishedAt")
              for s in (pod.get("status") or {}).get("containerStatuses") or []]
    return max((epoch(s) for s in stamps if s), default=None)


def completions_of(spec: dict[str, Any]) -> int | None:
    """``spec.completions`` as the API server defaults it: 1 when neither it nor parallelism is set."""
    if "completions" in spec:
        return spec["completions"]
    return None if "parallelism" in spec else 1


class JobController(Controller):
    """Runs a Job's pods to ``completions`` successes, or fails it (backoff limit, active deadline)."""

    kinds = ("Job",)
    owns = ("Pod",)

    def __init__(self, ctx, clock: Callable[[], float] = time.time):
        super().__init__(ctx)
        self.clock = clock

    async def reconcile(self, job: dict[str, Any]) -> Result:
        if job_condition(job):
            return DONE  # a finished Job is never touched again
        spec, now = job["spec"], self.clock()
        policy = spec["template"]["spec"].get("restartPolicy", "Always")
        if policy not in ("Never", "OnFailure"):
            message = (f'spec.template.spec.restartPolicy: Unsupported value: "{policy}": supported values: '
                       '"OnFailure", "Never" (a Job\'s pods run to completion)')
            self.store.record_event(job, "FailedCreate", message, "Warning")
            raise PermanentError("Invalid", message)
        pods = [p for p in self.store.list("Pod", ns(job)) if owned_by(p, job)]
        active = [p for p in pods if not finished(p)]
        succeeded = sum(phase(p) == "Succeeded" for p in pods)
        failed_pods = [p for p in pods if phase(p) == "Failed"]
        status = dict(job.get("status") or {})
        start = epoch(status["startTime"]) if "startTime" in status else now
        status["startTime"] = rfc3339(start)

        failure = self._failure(spec, policy, len(failed_pods), active, start, now)
        if failure:
            reason, message = failure
            for pod in active:
                self._delete_pod(job, pod)
            self._finish(job, status, "Failed", reason, message, now, succeeded, len(failed_pods) + len(active))
            self.store.record_event(job, reason, message, "Warning")
            return DONE
        completions = completions_of(spec)
        done = succeeded >= completions if completions is not None else succeeded > 0 and not active
        if done:
            for pod in active:
                self._delete_pod(job, pod)
            status["completionTime"] = rfc3339(now)
            self._finish(job, status, "Complete", "CompletionsReached", "Reached expected number of succeeded pods",
                         now, succeeded, len(failed_pods))
            self.store.record_event(job, "Completed", "Job completed")
            return DONE

        parallelism = int(spec.get("parallelism", 1))
        wanted = min(parallelism, completions - succeeded) if completions is not None else (
            0 if succeeded else parallelism)
        wait = self._backoff_left(failed_pods, now) if len(active) < wanted else 0.0
        if wait <= 0:
            active += [self._create_pod(job) for _ in range(wanted - len(active))]
        status.update(active=len(active), ready=sum(map(pod_ready, active)), succeeded=succeeded,
                      failed=len(failed_pods))
        self.store.set_status("Job", ns(job), job["metadata"]["name"], status)
        deadline = spec.get("activeDeadlineSeconds")
        due = [t for t in (wait if wait > 0 else None,
                           start + deadline - now if deadline is not None else None) if t is not None]
        return Result(requeue_after=max(min(due), 0.05)) if due else DONE

    @staticmethod
    def _failure(spec: dict[str, Any], policy: str, failed: int, active: list[dict[str, Any]], start: float,
                 now: float) -> tuple[str, str] | None:
        """(reason, message) if the Job has failed; the backoff limit is checked first, as upstream does."""
        limit = int(spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT))
        restarted = sum(restarts(p) for p in active) if policy == "OnFailure" else 0
        if failed > limit or (restarted > 0 and restarted >= max(limit, 1)):
            return "BackoffLimitExceeded", BACKOFF_LIMIT_MESSAGE
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and now - start >= deadline:
            return "DeadlineExceeded", DEADLINE_MESSAGE
        return None

    @staticmethod
    def _backoff_left(failed_pods: list[dict[str, Any]], now: float) -> float:
        """Seconds until a failed pod may be replaced: the back-off doubles with each failure."""
        if not failed_pods:
            return 0.0
        last = max((t for t in map(finished_at, failed_pods) if t is not None), default=None)
        delay = min(BACKOFF_START * 2 ** (len(failed_pods) - 1), BACKOFF_CAP)
        return 0.0 if last is None else last + delay - now

    def _finish(self, job: dict[str, Any], status: dict[str, Any], type_: str, reason: str, message: str,
                now: float, succeeded: int, failed: int) -> None:
        stamp = rfc3339(now)
        status.update(active=0, ready=0, succeeded=succeeded, failed=failed, conditions=[
            *(status.get("conditions") or []),
            *({"type": kind, "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp,
               "reason": reason, "message": message} for kind in (INTERIM[type_], type_))])
        self.store.set_status("Job", ns(job), job["metadata"]["name"], status)

    def _create_pod(self, job: dict[str, Any]) -> dict[str, Any]:
        template, meta = job["spec"]["template"], job["metadata"]
        name = f"{meta['name']}-{random_suffix()}"
        labels = {**((template.get("metadata") or {}).get("labels") or {}),
                  **{key: meta["name"] for key in JOB_NAME_LABELS},
                  **{key: meta["uid"] for key in CONTROLLER_UID_LABELS}}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns(job), "labels": labels,
                            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                            "ownerReferences": [owner_ref(job)]},
               "spec": template["spec"]}
        stored = self.store.apply(pod)
        self.store.record_event(job, "SuccessfulCreate", f"Created pod: {name}")
        return stored

    def _delete_pod(self, job: dict[str, Any], pod: dict[str, Any]) -> None:
        self.store.delete("Pod", ns(pod), pod["metadata"]["name"])
        self.store.record_event(job, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
