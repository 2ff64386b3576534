"""The HorizontalPodAutoscaler controller of the local target: it owns its target's replica count.

The local node runs no metrics server, so the HPA here can only keep `spec.replicas` of its target
within [minReplicas, maxReplicas], writing through the scale subresource as the real HPA does, and
leaves a target scaled to zero alone (ScalingDisabled, so KEDA's 0 <-> 1 stands); its conditions say so with the wording of the Kubernetes HPA controller (AbleToScale, ScalingActive,
ScalingLimited). It resyncs every 15 s, the kube-controller-manager's default HPA sync period.
"""
from __future__ import annotations

from typing import Any

from .base import Controller, Result, condition, ns

SYNC_PERIOD_SECONDS = 15.0


class HorizontalPodAutoscalerController(Controller):
    kinds = ("HorizontalPodAutoscaler",)
    watches = ("Deployment",)

    async def reconcile(self, hpa: dict[str, Any]) -> Result:
        spec = hpa["spec"]
        ref = spec.get("scaleTargetRef") or {}
        prev = (hpa.get("status") or {}).get("conditions")
        target = self.store.find(ref.get("kind", "Deployment"), ns(hpa), ref.get("name", ""))
        if target is None:
            message = f'the HPA controller was unable to get the target\'s current scale: {ref.get("kind")} ' \
                      f'"{ref.get("name")}" not found'
            self._status(hpa, None, [condition("AbleToScale", False, "FailedGetScale", message, prev)])
            return Result(SYNC_PERIOD_SECONDS)
        current = int(target["spec"].get("replicas", 1))
        if current == 0:  # KEDA took it to zero: the HPA stands aside, as Kubernetes' HPA does
            self._status(hpa, 0, [
                condition("AbleToScale", True, "SucceededGetScale", "the HPA controller was able to get the target's "
                                                                     "current scale", prev),
                condition("ScalingActive", False, "ScalingDisabled", "scaling is disabled since the replica count "
                                                                     "of the target is zero", prev)])
            return Result(SYNC_PERIOD_SECONDS)
        low, high = int(spec.get("minReplicas", 1)), int(spec["maxReplicas"])
        desired = min(max(current, low), high)
        if desired != current:
            self.store.scale(target["kind"], ns(target), target["metadata"]["name"], desired)
            side = "below minReplicas" if current < low else "above maxReplicas"
            self.store.record_event(hpa, "SuccessfulRescale", f"New size: {desired}; reason: Current number of "
                                                              f"replicas {side}")
        limited = desired in (low, high)
        self._status(hpa, desired, [
            condition("AbleToScale", True, "ReadyForNewScale", "recommended size matches current size", prev),
            condition("ScalingActive", False, "FailedGetResourceMetric",
                      "the HPA was unable to compute the replica count: the local target runs no metrics server, "
                      "so replicas are only held between minReplicas and maxReplicas", prev),
            condition("ScalingLimited", limited, "TooFewReplicas" if desired == low else
                      "TooManyReplicas" if limited else "DesiredWithinRange",
                      "the desired replica count is at a bound" if limited else
                      "the desired count is within the acceptable range", prev),
        ])
        return Result(SYNC_PERIOD_SECONDS)

    def _status(self, hpa: dict[str, Any], desired: int | None, conditions: list[dict[str, Any]]) -> None:
        status: dict[str, Any] = {"conditions": conditions}
        if desired is not None:
            status.update(currentReplicas=desired, desiredReplicas=desired)
        self.store.set_status("HorizontalPodAutoscaler", ns(hpa), hpa["metadata"]["name"], status)
