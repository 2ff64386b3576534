"""The HorizontalPodAutoscaler controller of the local target: it owns its target's replica count.

Every 15 s (the kube-controller-manager's default sync period) it reads the CPU of the target's pods
(`pod_metrics`, the local metrics-server), computes the replica count with Kubernetes' algorithm
(`hpa_algorithm`: ratio to the target utilization, 10 % tolerance, [min, max], scale-down
stabilization) and writes it through the scale subresource, with the HPA controller's conditions
(AbleToScale, ScalingActive, ScalingLimited) and its SuccessfulRescale events. A target at zero is
left alone (ScalingDisabled), which is what lets KEDA own 0 <-> 1.

What it must remember lives in status, as on a cluster the controller keeps it in memory:
``status.lab`` holds the last CPU reading per pod, the recommendations inside the stabilization
window, and the time of the last sync. Only Resource metrics on cpu with a Utilization target are
computed; for anything else the HPA holds replicas within its bounds and says why.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from ..pod_metrics import pod_cpu_request_millicores, pod_cpu_seconds
from .base import Context, Controller, Result, condition, ns, owned_by
from .hpa_algorithm import Recommendation, recommend, stabilize, utilization_ratio

SYNC_PERIOD_SECONDS = 15.0


def cpu_target(hpa: dict[str, Any]) -> float | None:
    """The averageUtilization of a Resource cpu metric with a Utilization target, if the HPA has one."""
    for metric in hpa["spec"].get("metrics") or []:
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu" and target.get("type") == "Utilization":
            return float(target["averageUtilization"])
    return None


class HorizontalPodAutoscalerController(Controller):
    kinds = ("HorizontalPodAutoscaler",)
    watches = ("Deployment",)

    def __init__(self, ctx: Context, clock: Callable[[], float] = time.time,
                 cpu_seconds: Callable[[dict[str, Any]], float | None] = pod_cpu_seconds):
        super().__init__(ctx)
        self.clock = clock
        self.cpu_seconds = cpu_seconds

    async def reconcile(self, hpa: dict[str, Any]) -> Result:
        now = self.clock()
        status = hpa.get("status") or {}
        memory = status.get("lab") or {}
        generation = hpa["metadata"].get("generation", 1)
        since = now - memory.get("lastSync", 0.0)
        if status.get("observedGeneration") == generation and since < SYNC_PERIOD_SECONDS:
            return Result(SYNC_PERIOD_SECONDS - since)
        spec = hpa["spec"]
        ref = spec.get("scaleTargetRef") or {}
        prev = status.get("conditions")
        target = self.store.find(ref.get("kind", "Deployment"), ns(hpa), ref.get("name", ""))
        if target is None:
            message = f'the HPA controller was unable to get the target\'s current scale: {ref.get("kind")} ' \
                      f'"{ref.get("name")}" not found'
            self._status(hpa, None, [condition("AbleToScale", False, "FailedGetScale", message, prev)], now, {})
            return Result(SYNC_PERIOD_SECONDS)
        current = int(target["spec"].get("replicas", 1))
        if current == 0:  # KEDA took it to zero: the HPA stands aside, as Kubernetes' HPA does
            self._status(hpa, 0, [
                condition("AbleToScale", True, "SucceededGetScale", "the HPA controller was able to get the target's "
                                                                     "current scale", prev),
                condition("ScalingActive", False, "ScalingDisabled", "scaling is disabled since the replica count "
                                                                     "of the target is zero", prev)], now, {})
            return Result(SYNC_PERIOD_SECONDS)
        low, high = int(spec.get("minReplicas", 1)), int(spec["maxReplicas"])
        recommendation, active, readings = self._recommend(hpa, target, current, low, high, now, memory)
        history = [Recommendation(*pair) for pair in memory.get("recommendations") or []]
        desired, history = stabilize(now, current, recommendation, history)
        desired = min(max(desired, low), high)
        if desired != current:
            self.store.scale(target["kind"], ns(target), target["metadata"]["name"], desired)
            self.store.record_event(hpa, "SuccessfulRescale", f"New size: {desired}; reason: {self._why(current, desired, low, high)}")
        limited = desired in (low, high)
        self._status(hpa, desired, [
            condition("AbleToScale", True, "ReadyForNewScale", "recommended size matches current size", prev),
            active,
            condition("ScalingLimited", limited, "TooFewReplicas" if desired == low else
                      "TooManyReplicas" if limited else "DesiredWithinRange",
                      "the desired replica count is at a bound" if limited else
                      "the desired count is within the acceptable range", prev),
        ], now, {"cpu": readings, "recommendations": [[r.at, r.replicas] for r in history]})
        return Result(SYNC_PERIOD_SECONDS)

    def _recommend(self, hpa: dict[str, Any], target: dict[str, Any], current: int, low: int, high: int,
                   now: float, memory: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, list[float]]]:
        """(recommendation, the ScalingActive condition, this sync's CPU readings per pod)."""
        prev = (hpa.get("status") or {}).get("conditions")
        target_percent = cpu_target(hpa)
        if target_percent is None:
            return current, condition("ScalingActive", False, "FailedGetResourceMetric",
                                      "the local HPA computes only Resource cpu metrics with a Utilization target; "
                                      "replicas are held between minReplicas and maxReplicas", prev), {}
        pods = [p for p in self.store.list("Pod", ns(target)) if owned_by(p, target)
                and (p.get("status") or {}).get("phase") == "Running"]
        before = memory.get("cpu") or {}
        readings, usage, requests = {}, [], []
        for pod in pods:
            name = pod["metadata"]["name"]
            seconds = self.cpu_seconds(pod)
            if seconds is None:
                continue
            readings[name] = [now, seconds]
            if name in before and now > before[name][0]:
                usage.append(1000.0 * (seconds - before[name][1]) / (now - before[name][0]))
                requests.append(pod_cpu_request_millicores(pod))
        try:
            ratio = utilization_ratio(usage, requests, target_percent)
        except ValueError as exc:
            return current, condition("ScalingActive", False, "FailedGetResourceMetric",
                                      f"the HPA was unable to compute the replica count: failed to get cpu "
                                      f"utilization: {exc} (a pod needs two readings, {SYNC_PERIOD_SECONDS:g} s apart)",
                                      prev), readings
        active = condition("ScalingActive", True, "ValidMetricFound", "the HPA was able to successfully calculate a "
                           "replica count from cpu resource utilization (percentage of request)", prev)
        return recommend(current, ratio, len(usage), low, high), active, readings

    @staticmethod
    def _why(current: int, desired: int, low: int, high: int) -> str:
        if current < low:
            return "Current number of replicas below minReplicas"
        if current > high:
            return "Current number of replicas above maxReplicas"
        return "cpu resource utilization (percentage of request) " + ("above" if desired > current else "below") + \
            " target"

    def _status(self, hpa: dict[str, Any], desired: int | None, conditions: list[dict[str, Any]], now: float,
                memory: dict[str, Any]) -> None:
        status: dict[str, Any] = {"conditions": conditions, "observedGeneration": hpa["metadata"].get("generation", 1),
                                  "lab": {"lastSync": now, **memory}}
        if desired is not None:
            status.update(currentReplicas=desired, desiredReplicas=desired)
        self.store.set_status("HorizontalPodAutoscaler", ns(hpa), hpa["metadata"]["name"], status)
