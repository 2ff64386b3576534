"""KEDA's scale executor as a pure function: given a ScaledObject, its target's replicas and what the
triggers say, which replica count to write, which conditions to set and which event to record.

Mirrors ``RequestScale``, ``scaleToZeroOrIdle`` and ``scaleFromZeroOrIdle`` of KEDA v2.20
(https://github.com/kedacore/keda/blob/v2.20.2/pkg/scaling/executor/scale_scaledobjects.go) and the
pause handling of its ScaledObject controller, rule for rule:

- activation (0 <-> 1) is decided here; 1 <-> N is the HPA's job (KEDA generates one);
- a trigger is active when its value is strictly greater than its activation threshold;
- scale-in to min (or idle) waits ``cooldownPeriod`` after the last active time, or, when the
  object was never active, only ``initialCooldownPeriod`` after creation (default 0: at once);
- ``autoscaling.keda.sh/paused`` freezes the target, ``paused-replicas: N`` pins it to N,
  ``paused-scale-in`` / ``paused-scale-out`` block one direction, ``force-activation`` activates.

Times are seconds since the epoch, so the decision needs nothing that a restart loses: the last
active time lives in the object's status, as KEDA keeps it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_POLLING_INTERVAL = 30
DEFAULT_COOLDOWN_PERIOD = 300
DEFAULT_INITIAL_COOLDOWN_PERIOD = 0
DEFAULT_MAX_REPLICAS = 100

PAUSED = "autoscaling.keda.sh/paused"
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
PAUSED_SCALE_IN = "autoscaling.keda.sh/paused-scale-in"
PAUSED_SCALE_OUT = "autoscaling.keda.sh/paused-scale-out"
FORCE_ACTIVATION = "autoscaling.keda.sh/force-activation"

READY_MESSAGE = "ScaledObject is defined correctly and is ready for scaling"


class InvalidScaledObject(ValueError):
    """The spec cannot be scaled as written; the message is KEDA's wording of why."""


def _bool_annotation(annotations: dict[str, str], key: str) -> bool:
    """KEDA's getBoolAnnotation: absent is False; a value that is not a boolean counts as True."""
    if key not in annotations:
        return False
    return annotations[key].strip().lower() not in ("false", "0", "f")


@dataclass(frozen=True)
class ScalingSpec:
    """The fields of a ScaledObject the executor reads, with KEDA's defaults filled in."""

    min_replicas: int
    max_replicas: int
    idle_replicas: int | None
    polling_interval: int
    cooldown_period: int
    initial_cooldown_period: int
    paused: bool
    paused_replicas: int | None
    pause_scale_in: bool
    pause_scale_out: bool
    force_activation: bool
    has_fallback: bool

    @classmethod
    def of(cls, scaled_object: dict[str, Any]) -> ScalingSpec:
        spec = scaled_object.get("spec") or {}
        annotations = scaled_object["metadata"].get("annotations") or {}
        paused_replicas = annotations.get(PAUSED_REPLICAS)
        if paused_replicas is not None:
            try:
                paused_count: int | None = int(paused_replicas)
            except ValueError:
                raise InvalidScaledObject(f"failed to parse paused replica count: {PAUSED_REPLICAS}="
                                          f"{paused_replicas!r} is not an integer") from None
        else:
            paused_count = None
        made = cls(
            min_replicas=int(spec.get("minReplicaCount", 0)),
            max_replicas=int(spec.get("maxReplicaCount", DEFAULT_MAX_REPLICAS)),
            idle_replicas=None if spec.get("idleReplicaCount") is None else int(spec["idleReplicaCount"]),
            polling_interval=int(spec.get("pollingInterval", DEFAULT_POLLING_INTERVAL)),
            cooldown_period=int(spec.get("cooldownPeriod", DEFAULT_COOLDOWN_PERIOD)),
            initial_cooldown_period=int(spec.get("initialCooldownPeriod", DEFAULT_INITIAL_COOLDOWN_PERIOD)),
            paused=paused_count is not None or _bool_annotation(annotations, PAUSED),
            paused_replicas=paused_count,
            pause_scale_in=_bool_annotation(annotations, PAUSED_SCALE_IN),
            pause_scale_out=_bool_annotation(annotations, PAUSED_SCALE_OUT),
            force_activation=_bool_annotation(annotations, FORCE_ACTIVATION),
            has_fallback=bool((spec.get("fallback") or {}).get("replicas")),
        )
        made.check_bounds()
        return made

    def check_bounds(self) -> None:
        """KEDA's CheckReplicaCountBoundsAreValid (the CRD already rejects negative counts)."""
        if self.min_replicas > self.max_replicas:
            raise InvalidScaledObject("ScaledObject doesn't have correct Idle/Min/Max Replica Counts specification: "
                                      f"MinReplicaCount={self.min_replicas} must be less than "
                                      f"MaxReplicaCount={self.max_replicas}")
        if self.idle_replicas is not None and self.idle_replicas >= self.min_replicas:
            raise InvalidScaledObject("ScaledObject doesn't have correct Idle/Min/Max Replica Counts specification: "
                                      f"IdleReplicaCount={self.idle_replicas} must be less than "
                                      f"MinReplicaCount={self.min_replicas}")

    @property
    def hpa_min_replicas(self) -> int:
        """The generated HPA's floor: an HPA cannot go below 1, so 0 <-> 1 stays with KEDA."""
        return max(self.min_replicas, 1)


@dataclass(frozen=True)
class Condition:
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    """What one pass of the executor does: `replicas` to write (None: leave them), conditions, event."""

    replicas: int | None
    ready: Condition
    active: Condition | None          # None: left as it was (a paused object)
    paused: Condition
    last_active: float | None         # the new lastActiveTime, or the old one
    event: tuple[str, str, str] | None = None  # (type, reason, message)


def decide(spec: ScalingSpec, *, current: int, active: bool, error: bool, active_triggers: list[str],
           last_active: float | None, created: float, now: float, target: str) -> Decision:
    """One ``RequestScale``. `target` names the scale target in events (``Deployment ns/name``)."""
    ready = Condition("True", "ScaledObjectReady", READY_MESSAGE)
    not_paused = Condition("False", "ScaledObjectUnpaused", "pause annotation removed for ScaledObject")
    if spec.paused:
        paused = Condition("True", "ScaledObjectPaused", "ScaledObject is paused")
        pinned = spec.paused_replicas if spec.paused_replicas is not None and spec.paused_replicas != current else None
        return Decision(pinned, ready, None, paused, last_active)

    if active or spec.force_activation:
        why = "activation is being forced by annotation" if spec.force_activation and not active else \
            "triggers are active"
        active_condition = Condition("True", "ScalerActive", f"Scaling is performed because {why}")
        if (spec.idle_replicas is not None and current < spec.min_replicas) or current == 0:
            if spec.pause_scale_out:
                return Decision(None, ready, active_condition, not_paused, last_active)
            replicas = spec.min_replicas if spec.min_replicas > 0 else 1
            cause = "caused by forced activation annotation" if spec.force_activation and not active else \
                f"triggered by {';'.join(active_triggers)}"
            event = ("Normal", "KEDAScaleTargetActivated", f"Scaled {target} from {current} to {replicas}, {cause}")
            return Decision(replicas, ready, active_condition, not_paused, now, event)
        if error:
            partial = Condition("Unknown", "PartialTriggerError",
                                "Some triggers defined in ScaledObject are not working correctly")
            return Decision(None, partial, active_condition, not_paused, last_active)
        return Decision(None, ready, active_condition, not_paused, now)

    inactive = Condition("False", "ScalerNotActive", "Scaling is not performed because triggers are not active")
    if error and spec.has_fallback:
        return Decision(None, ready, inactive, not_paused, last_active)
    if error:
        failing = Condition("False", "TriggerError", "Triggers defined in ScaledObject are not working correctly")
        return Decision(None, failing, inactive, not_paused, last_active)
    if (spec.idle_replicas is not None and current > spec.idle_replicas) or (current > 0 and spec.min_replicas == 0):
        return _scale_to_zero_or_idle(spec, current, last_active, created, now, target, ready, inactive, not_paused)
    if spec.idle_replicas is None and current < spec.min_replicas:
        return Decision(spec.min_replicas, ready, inactive, not_paused, last_active)
    return Decision(None, ready, inactive, not_paused, last_active)


def _scale_to_zero_or_idle(spec: ScalingSpec, current: int, last_active: float | None, created: float, now: float,
                           target: str, ready: Condition, inactive: Condition, not_paused: Condition) -> Decision:
    if spec.pause_scale_in:
        return Decision(None, ready, inactive, not_paused, last_active)
    never_active_and_past_grace = last_active is None and created + spec.initial_cooldown_period < now
    cooled_down = last_active is not None and last_active + spec.cooldown_period < now
    if not (never_active_and_past_grace or cooled_down):
        cooling = Condition("False", "ScalerCooldown", "Scaler cooling down because triggers are not active")
        return Decision(None, ready, cooling, not_paused, last_active)
    replicas = spec.idle_replicas if spec.idle_replicas is not None else spec.min_replicas
    event = ("Normal", "KEDAScaleTargetDeactivated", f"Deactivated {target} from {current} to {replicas}")
    return Decision(replicas, ready, inactive, not_paused, last_active, event)

