"""Jobs made from a CronJob's template, the same on both targets, and the Job facts both read.

A CronJob's Jobs come from ``spec.jobTemplate`` two ways: on schedule, by the CronJob controller
(``<cronjob>-<scheduled time in minutes since the epoch>``, with the scheduled time in an
annotation), and on demand, as ``kubectl create job NAME --from=cronjob/CRONJOB`` makes one (the
annotation ``cronjob.kubernetes.io/instantiate: manual``). Both carry the template's labels and
annotations and a controller owner reference to the CronJob, so deleting the CronJob deletes them.
Upstream: kubernetes pkg/controller/cronjob/utils.go (getJobFromTemplate2) and kubectl
pkg/cmd/create/create_job.go (createJobFromCronJob).
"""
from __future__ import annotations

import copy
import secrets
from datetime import datetime, timezone
from typing import Any

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
INSTANTIATE = "cronjob.kubernetes.io/instantiate"
# The alphabet of apimachinery's rand.String (no vowels, no look-alikes), which generateName's suffix uses.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def rfc3339(epoch: float) -> str:
    """A ``metav1.Time`` (whole seconds, UTC)."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    """What ``metadata.generateName`` appends: a Job's pods are ``<job>-<5 chars>``."""
    return "".join(secrets.choice(NAME_ALPHABET) for _ in range(length))


def job_condition(job: dict[str, Any]) -> str | None:
    """``Complete`` or ``Failed`` once the Job has finished (that condition is True), else None."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"]
    return None


def scheduled_job_name(cronjob: dict[str, Any], scheduled: float) -> str:
    """Upstream's getJobName: the name is the lock that stops one schedule time making two Jobs."""
    return f"{cronjob['metadata']['name']}-{int(scheduled) // 60}"


def job_from_cronjob(cronjob: dict[str, Any], name: str, annotations: dict[str, str]) -> dict[str, Any]:
    """A Job of `cronjob`'s ``spec.jobTemplate`` named `name`, owned by the CronJob (its controller)."""
    template = cronjob["spec"]["jobTemplate"]
    meta = template.get("metadata") or {}
    owner = {"apiVersion": cronjob.get("apiVersion", "batch/v1"), "kind": "CronJob",
             "name": cronjob["metadata"]["name"], "uid": cronjob["metadata"]["uid"], "controller": True}
    job_meta: dict[str, Any] = {"name": name, "namespace": cronjob["metadata"].get("namespace"),
                                "annotations": {**annotations, **(meta.get("annotations") or {})},
                                "ownerReferences": [owner]}
    if meta.get("labels"):
        job_meta["labels"] = dict(meta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": copy.deepcopy(template["spec"])}


def manual_job(cronjob: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The Job ``kubectl create job NAME --from=cronjob/…`` creates (default name ``<cronjob>-manual-<5 chars>``).

    kubectl POSTs it; the lab applies it (a fresh name, so the apply creates it).
    """
    name = name or f"{cronjob['metadata']['name']}-manual-{random_suffix()}"
    return job_from_cronjob(cronjob, name, {INSTANTIATE: "manual"})


def scheduled_job(cronjob: dict[str, Any], scheduled: float, zone: Any = timezone.utc) -> dict[str, Any]:
    """The Job the CronJob controller creates for the schedule time `scheduled` (epoch seconds)."""
    stamp = datetime.fromtimestamp(int(scheduled), zone).isoformat().replace("+00:00", "Z")  # Go's RFC3339
    job = job_from_cronjob(cronjob, scheduled_job_name(cronjob, scheduled), {SCHEDULED_AT: stamp})
    job["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = True
    return job
