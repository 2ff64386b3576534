"""KEDA's scale executor rules, one row each (lab_helpers.local.controllers.keda_scaling)."""
from __future__ import annotations

import pytest

from lab_helpers.local.controllers.keda_scaling import (FORCE_ACTIVATION, PAUSED, PAUSED_REPLICAS, PAUSED_SCALE_IN,
                                                        PAUSED_SCALE_OUT, InvalidScaledObject, ScalingSpec, decide)

CREATED, NOW = 1000.0, 2000.0


def spec(annotations: dict[str, str] | None = None, **fields) -> ScalingSpec:
    return ScalingSpec.of({"metadata": {"name": "so", "annotations": annotations or {}},
                           "spec": {"scaleTargetRef": {"name": "d"}, **fields}})


def run(s: ScalingSpec, current: int, active: bool, *, error: bool = False, last_active: float | None = None,
        created: float = CREATED):
    return decide(s, current=current, active=active, error=error, active_triggers=["external-push"],
                  last_active=last_active, created=created, now=NOW, target="Deployment lab/d")


# (why, spec, current, active, last_active, created) -> (replicas written, Active reason)
ROWS = [
    ("active at 0 scales to 1", spec(minReplicaCount=0), 0, True, None, CREATED, 1, "ScalerActive"),
    ("active at 0 scales to min when min > 0", spec(minReplicaCount=2, maxReplicaCount=4), 0, True, None, CREATED,
     2, "ScalerActive"),
    ("active above 0 leaves replicas to the HPA", spec(), 3, True, None, CREATED, None, "ScalerActive"),
    ("never active: to min at once (initialCooldownPeriod 0)", spec(cooldownPeriod=300), 1, False, None, CREATED,
     0, "ScalerNotActive"),
    ("never active, inside initialCooldownPeriod: wait", spec(initialCooldownPeriod=5000), 1, False, None, CREATED,
     None, "ScalerCooldown"),
    ("active recently: cooldown not over", spec(cooldownPeriod=300), 1, False, NOW - 100, CREATED, None,
     "ScalerCooldown"),
    ("cooldown over: to zero", spec(cooldownPeriod=300), 1, False, NOW - 301, CREATED, 0, "ScalerNotActive"),
    ("cooldown exactly now: still cooling (strictly before)", spec(cooldownPeriod=300), 1, False, NOW - 300,
     CREATED, None, "ScalerCooldown"),
    ("min >= 1: never to zero, inactive leaves replicas", spec(minReplicaCount=1, cooldownPeriod=0), 2, False,
     NOW - 999, CREATED, None, "ScalerNotActive"),
    ("below min while inactive: raised to min", spec(minReplicaCount=2, maxReplicaCount=3), 1, False, None, CREATED,
     2, "ScalerNotActive"),
    ("idleReplicaCount: inactive goes to idle, not min", spec(minReplicaCount=2, maxReplicaCount=3,
                                                             idleReplicaCount=0, cooldownPeriod=10),
     2, False, NOW - 11, CREATED, 0, "ScalerNotActive"),
    ("idleReplicaCount: active below min goes to min", spec(minReplicaCount=2, maxReplicaCount=3,
                                                           idleReplicaCount=0), 0, True, None, CREATED, 2,
     "ScalerActive"),
    ("already at zero and inactive: nothing", spec(), 0, False, NOW - 999, CREATED, None, "ScalerNotActive"),
]


@pytest.mark.parametrize("why,s,current,active,last_active,created,replicas,reason", ROWS, ids=[r[0] for r in ROWS])
def test_executor_rule(why, s, current, active, last_active, created, replicas, reason):
    decision = run(s, current, active, last_active=last_active, created=created)
    assert decision.replicas == replicas
    assert decision.active is not None and decision.active.reason == reason


def test_activation_records_the_time_and_an_event_naming_the_trigger():
    decision = run(spec(), 0, True)
    assert decision.last_active == NOW
    assert decision.event == ("Normal", "KEDAScaleTargetActivated",
                              "Scaled Deployment lab/d from 0 to 1, triggered by external-push")


def test_deactivation_keeps_the_last_active_time_and_says_so():
    decision = run(spec(cooldownPeriod=10), 1, False, last_active=NOW - 11)
    assert decision.last_active == NOW - 11
    assert decision.event == ("Normal", "KEDAScaleTargetDeactivated", "Deactivated Deployment lab/d from 1 to 0")


def test_active_above_zero_refreshes_the_last_active_time():
    assert run(spec(), 2, True, last_active=NOW - 50).last_active == NOW


@pytest.mark.parametrize("annotations,current,replicas", [
    ({PAUSED: "true"}, 1, None),            # frozen where it is, even when inactive for long
    ({PAUSED: "yes"}, 1, None),             # not a boolean: counts as true, as KEDA's getBoolAnnotation does
    ({PAUSED_REPLICAS: "3"}, 1, 3),         # pinned to the count
    ({PAUSED_REPLICAS: "0"}, 0, None),      # already there
])
def test_paused(annotations, current, replicas):
    decision = run(spec(annotations, maxReplicaCount=5), current, False, last_active=NOW - 9999)
    assert decision.replicas == replicas
    assert decision.paused.status == "True" and decision.paused.reason == "ScaledObjectPaused"
    assert decision.active is None


def test_paused_false_is_not_paused():
    assert run(spec({PAUSED: "false"}), 1, False).paused.status == "False"


def test_paused_scale_in_blocks_only_scale_in():
    s = spec({PAUSED_SCALE_IN: "true"}, cooldownPeriod=1)
    assert run(s, 1, False, last_active=NOW - 10).replicas is None
    assert run(s, 0, True).replicas == 1


def test_paused_scale_out_blocks_only_scale_out():
    s = spec({PAUSED_SCALE_OUT: "true"}, cooldownPeriod=1)
    assert run(s, 0, True).replicas is None
    assert run(s, 1, False, last_active=NOW - 10).replicas == 0


def test_force_activation_wakes_an_inactive_object():
    decision = run(spec({FORCE_ACTIVATION: "true"}), 0, False)
    assert decision.replicas == 1
    assert decision.active is not None and "forced by annotation" in decision.active.message


def test_trigger_error_without_fallback_makes_it_not_ready_and_keeps_replicas():
    decision = run(spec(), 1, False, error=True, last_active=NOW - 9999)
    assert decision.replicas is None
    assert (decision.ready.status, decision.ready.reason) == ("False", "TriggerError")


def test_trigger_error_with_some_trigger_active_is_a_partial_error():
    decision = run(spec(), 2, True, error=True)
    assert (decision.ready.status, decision.ready.reason) == ("Unknown", "PartialTriggerError")


@pytest.mark.parametrize("fields,annotations,message", [
    ({"minReplicaCount": 3, "maxReplicaCount": 2}, {}, "MinReplicaCount=3 must be less than MaxReplicaCount=2"),
    ({"minReplicaCount": 1, "idleReplicaCount": 1}, {}, "IdleReplicaCount=1 must be less than MinReplicaCount=1"),
    ({}, {PAUSED_REPLICAS: "many"}, "failed to parse paused replica count"),
])
def test_invalid_specs_say_what_is_wrong(fields, annotations, message):
    with pytest.raises(InvalidScaledObject, match=message):
        spec(annotations, **fields)


def test_defaults_are_kedas():
    s = spec()
    assert (s.min_replicas, s.max_replicas, s.polling_interval, s.cooldown_period, s.initial_cooldown_period) == \
        (0, 100, 30, 300, 0)
    assert s.hpa_min_replicas == 1
