"""The HorizontalPodAutoscaler's replica calculation, as a pure function (Kubernetes' algorithm details).

https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details

- ``desiredReplicas = ceil(currentReplicas * currentMetricValue / desiredMetricValue)``, where for a
  Resource metric with a Utilization target the metric is the pods' summed usage over their summed
  requests, and the replica count is the number of pods that reported a metric;
- within the tolerance (0.1 by default: a ratio between 0.9 and 1.1) nothing changes;
- the result is clamped to [minReplicas, maxReplicas];
- stabilization: scaling down takes the highest recommendation of the last
  ``scaleDown.stabilizationWindowSeconds`` (default 300 s), scaling up the lowest of the last
  ``scaleUp.stabilizationWindowSeconds`` (default 0), so a short dip does not remove pods.

Simplified: no scaling policies (rate limits per period), and pods without a metric are left out
rather than assumed at 0 % / 100 % as the controller does for missing pods.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

TOLERANCE = 0.1
SCALE_DOWN_WINDOW_S = 300.0
SCALE_UP_WINDOW_S = 0.0


@dataclass(frozen=True)
class Recommendation:
    at: float
    replicas: int


def utilization_ratio(usage_millicores: list[float], request_millicores: list[float], target_percent: float) -> float:
    """Current utilization over the target: summed usage over summed requests, as a share of `target_percent`."""
    if not usage_millicores or sum(request_millicores) <= 0:
        raise ValueError("no pod reported a CPU usage with a CPU request: utilization is undefined")
    utilization = 100.0 * sum(usage_millicores) / sum(request_millicores)
    return utilization / target_percent


def recommend(current: int, ratio: float, pods_with_metrics: int, low: int, high: int,
              tolerance: float = TOLERANCE) -> int:
    """The raw recommendation for this sync, clamped to [low, high]."""
    if abs(1.0 - ratio) <= tolerance:
        wanted = current
    else:
        wanted = math.ceil(ratio * pods_with_metrics)
    return min(max(wanted, low), high)


def stabilize(now: float, current: int, recommendation: int, history: list[Recommendation],
              down_window_s: float = SCALE_DOWN_WINDOW_S,
              up_window_s: float = SCALE_UP_WINDOW_S) -> tuple[int, list[Recommendation]]:
    """The replica count to set, and the recommendations to remember (those inside the longer window).

    As the controller's stabilizeRecommendationWithBehaviors: the current count raised to the lowest
    recommendation of the up window, then lowered to the highest of the down window.
    """
    history = [r for r in history if now - r.at < max(down_window_s, up_window_s)] + [Recommendation(now, recommendation)]
    up = min(r.replicas for r in history if now - r.at <= up_window_s)
    down = max(r.replicas for r in history if now - r.at <= down_window_s)
    return min(max(current, up), down), history
