"""Inject one of the exit test's faults into an InferenceService, wait for its symptom, and take it back out.

A fault is injected as a *fresh deploy* of the broken spec (delete, wait for KServe's children to go, apply),
because that is the scenario the exit test names, "stuck Ready=False after deploy": changing a serving
service in place would leave its old pod serving while the new one fails. Clearing applies the original spec
over the broken one, as a fix is rolled out. The truth stays in the returned `Injection`, not on the object,
so what a learner reads on the cluster does not give the answer away.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from ..diagnosis import ISVC_LABEL, ServiceDiagnosis, ServiceReader, diagnose_inference_service
from ..errors import LabError, NotFound
from ..progress import Dots
from .scenarios import Scenario, pick_scenario, scenario as named_scenario

POLL_SECONDS = 0.25
# Fields of metadata an apply may carry; the rest (uid, resourceVersion, managedFields...) is the server's.
APPLIED_METADATA = ("name", "namespace", "labels", "annotations")


class FaultTarget(ServiceReader, Protocol):
    """What injecting uses of a target (`lab_helpers.api.Lab` has all of it)."""

    def apply(self, source: Any, variables: dict[str, str] | None = None) -> list[dict[str, Any]]: ...

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None: ...


@dataclass(frozen=True)
class Injection:
    """A fault in a service: which scenario, and the spec to restore."""

    service: str
    namespace: str | None
    scenario: Scenario
    original: dict[str, Any]


def as_applied(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a user's manifest would hold it: no status, no server-set metadata."""
    meta = {k: v for k, v in obj["metadata"].items() if k in APPLIED_METADATA and v}
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta, "spec": obj["spec"]}


def _gone(lab: FaultTarget, kind: str, name: str, namespace: str | None) -> bool:
    try:
        lab.get(kind, name, namespace)
    except NotFound:
        return True
    return False


def redeploy(lab: FaultTarget, obj: dict[str, Any], timeout: float) -> None:
    """Delete the InferenceService, wait until it, its predictor Deployment and its pods are gone, then apply `obj`
    (so no pod of the old spec is left to confuse what the new one shows)."""
    name, namespace = obj["metadata"]["name"], obj["metadata"].get("namespace")
    lab.delete("InferenceService", name, namespace)
    deadline = time.monotonic() + timeout
    dots = Dots(f"deleting InferenceService {name} and what KServe made for it")
    while not (_gone(lab, "InferenceService", name, namespace)
               and _gone(lab, "Deployment", f"{name}-predictor", namespace)
               and not lab.list("Pod", namespace, labels={ISVC_LABEL: name})):
        if time.monotonic() > deadline:
            dots.done("still there")
            raise LabError(f"InferenceService {name}, its Deployment {name}-predictor or a pod of it is still "
                           f"there {timeout:g} s after the delete: is a finalizer holding it? "
                           "(runbooks/service-not-ready.md)")
        dots.tick()
        time.sleep(POLL_SECONDS)
    dots.done("gone")
    lab.apply(obj)


def inject_fault(lab: FaultTarget, service: str, scenario: str | Scenario | None = None, seed: int | None = None,
                 namespace: str | None = None, timeout: float = 60.0) -> Injection:
    """Redeploy `service` with one fault: the named `scenario`, else one drawn with `seed`."""
    if scenario is None and seed is None:
        raise LabError("inject_fault needs a scenario name or a seed to draw one with")
    chosen = (pick_scenario(seed) if scenario is None else
              scenario if isinstance(scenario, Scenario) else named_scenario(scenario))
    original = as_applied(lab.get("InferenceService", service, namespace))
    runtimes = lab.list("ClusterServingRuntime") + lab.list("ServingRuntime", namespace)
    redeploy(lab, chosen.breaks(original, runtimes), timeout)
    return Injection(service, namespace, chosen, original)


def clear_fault(lab: FaultTarget, injection: Injection) -> dict[str, Any]:
    """Apply the original spec over the broken one (the fix a learner would roll out); the object as applied."""
    return lab.apply(injection.original)[0]


def wait_for_symptom(lab: FaultTarget, service: str, namespace: str | None = None,
                     timeout: float = 60.0) -> ServiceDiagnosis:
    """Poll the diagnosis until it names a cause; the last diagnosis on timeout, whatever it says."""
    deadline = time.monotonic() + timeout
    dots = Dots(f"waiting for {service} to show what is wrong")
    while True:
        found = diagnose_inference_service(lab, service, namespace)
        if found.cause or time.monotonic() > deadline:
            dots.done(f"{'Ready' if found.ready else 'not Ready'}, {found.reason}")
            return found
        dots.tick()
        time.sleep(POLL_SECONDS)
