"""The KEDA operator of the local target: ScaledObjects scale their Deployment 0 <-> 1, and an HPA 1 <-> N.

Each ScaledObject is polled every ``pollingInterval``: its triggers are evaluated, then KEDA's
executor rules (`keda_scaling.decide`) say which replica count to write through the scale
subresource, with KEDA's conditions (Ready, Active, Fallback, Paused) and events. KEDA generates an
HPA ``keda-hpa-<name>`` for 1 <-> N; so does this controller (the local HPA holds replicas within
its bounds and leaves a target at 0 alone, as the real HPA's ScalingDisabled does).

Triggers:
- ``prometheus``: the query runs against the lab's Prometheus (a cluster ``serverAddress`` such as
  ``http://kube-prometheus-stack-prometheus.monitoring:9090`` is mapped to it); one element expected,
  an empty result is 0 unless ``ignoreNullValues: "false"``; active when the value is strictly
  greater than ``activationThreshold`` (default 0).
- ``external-push`` naming an ``interceptorRoute``: the HTTP add-on's interceptor concurrency for
  that route; the interceptor pushes the first held request (`push`), so 0 -> 1 does not wait for
  the next poll, as the add-on's external scaler streams to KEDA.
- ``cpu`` / ``memory``: the local target has no metrics server; they count as active (they only
  matter between 1 and N, where KEDA hands them to the HPA).

The poll schedule lives in status (``status.lab.lastPoll``), so a status write does not poll again
and a restarted daemon keeps the cadence. Simplified: no fallback replicas, no scalingModifiers,
one Prometheus; trigger authentication is not evaluated.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any, Callable

from ...errors import LabError
from ...gateway.interceptor import Interceptor
from ...prom.client import PromClient
from .base import Context, Controller, Result, ns
from .keda_scaling import Condition, Decision, InvalidScaledObject, ScalingSpec, decide

KNOWN_TRIGGERS = ("prometheus", "external-push", "cpu", "memory")
SCALE_TARGET_MESSAGE = "ScaledObject doesn't have correct scaleTargetRef specification"
TRIGGERS_MESSAGE = "ScaledObject doesn't have correct triggers specification"
RUNBOOK = "runbooks/scale-to-zero-failing.md"
# The metadata key an external-push trigger names the HTTP add-on's route by, per route kind.
PUSH_KEYS = {"InterceptorRoute": "interceptorRoute", "HTTPScaledObject": "httpScaledObject"}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


class TriggerError(LabError):
    """A trigger could not be evaluated (the executor then treats the ScaledObject as in error)."""


class ScaledObjectController(Controller):
    kinds = ("ScaledObject",)
    owns = ("HorizontalPodAutoscaler",)

    def __init__(self, ctx: Context, interceptor: Interceptor, prometheus_url: Callable[[], str | None],
                 clock: Callable[[], float] = time.time):
        super().__init__(ctx)
        self.interceptor = interceptor
        self.prometheus_url = prometheus_url
        self.clock = clock
        self._pushed: set[tuple[str, str]] = set()  # a push is an event, like KEDA's push channel

    def push(self, namespace: str, name: str) -> None:
        """The interceptor holds a request for this ScaledObject's route: poll at the next reconcile."""
        self._pushed.add((namespace, name))

    def scaled_objects_for_route(self, kind: str, namespace: str, route: str) -> list[str]:
        """Names of the ScaledObjects whose external-push trigger names that InterceptorRoute / HTTPScaledObject."""
        key = PUSH_KEYS[kind]
        return [so["metadata"]["name"] for so in self.store.list("ScaledObject", namespace)
                if any(t.get("type") == "external-push" and (t.get("metadata") or {}).get(key) == route
                       for t in so["spec"].get("triggers") or [])]

    async def reconcile(self, so: dict[str, Any]) -> Result:
        now = self.clock()
        status = so.get("status") or {}
        generation = so["metadata"].get("generation", 1)
        pushed = (ns(so), so["metadata"]["name"]) in self._pushed
        last_poll = (status.get("lab") or {}).get("lastPoll")
        try:
            spec = ScalingSpec.of(so)
        except InvalidScaledObject as exc:
            return self._check_failed(so, str(exc), None)
        due = last_poll is None or now - last_poll >= spec.polling_interval
        if status.get("observedGeneration") == generation and not due and not pushed:
            return Result(spec.polling_interval - (now - last_poll))
        self._pushed.discard((ns(so), so["metadata"]["name"]))
        ref = so["spec"].get("scaleTargetRef") or {}
        target = self.store.find(ref.get("kind", "Deployment"), ns(so), ref.get("name", ""))
        if target is None:
            return self._check_failed(so, f'{SCALE_TARGET_MESSAGE}: deployments.apps "{ref.get("name")}" not found',
                                      spec.polling_interval)
        unknown = [t.get("type") for t in so["spec"].get("triggers") or [] if t.get("type") not in KNOWN_TRIGGERS]
        if unknown:
            return self._check_failed(so, f"{TRIGGERS_MESSAGE}: no scaler found for type: {unknown[0]} (the local "
                                          f"target knows {', '.join(KNOWN_TRIGGERS)})", None)
        self._ensure_hpa(so, spec)
        active, errors, active_triggers = await self._evaluate(so)
        current = int(target["spec"].get("replicas", 1))
        decision = decide(spec, current=current, active=active, error=bool(errors), active_triggers=active_triggers,
                          last_active=_epoch(status.get("lastActiveTime")),
                          created=_epoch(so["metadata"].get("creationTimestamp")) or now, now=now,
                          target=f"apps/v1.Deployment {ns(so)}/{target['metadata']['name']}")
        if decision.replicas is not None:
            self.store.scale(target["kind"], ns(so), target["metadata"]["name"], decision.replicas)
        if decision.event is not None:
            type_, reason, message = decision.event
            self.store.record_event(so, reason, message, type_)
        for error in errors:
            self.store.record_event(so, "KEDAScalerFailed", error, "Warning")
        self._status(so, decision, errors, now)
        return Result(spec.polling_interval)

    async def _evaluate(self, so: dict[str, Any]) -> tuple[bool, list[str], list[str]]:
        """(any trigger active, errors, the types of the active triggers)."""
        active_triggers, errors = [], []
        for trigger in so["spec"].get("triggers") or []:
            try:
                active = await self._is_active(ns(so), trigger)
            except TriggerError as exc:
                errors.append(f"{trigger.get('type')} trigger: {exc}")
                continue
            if active:
                active_triggers.append(trigger.get("name") or trigger["type"])
        return bool(active_triggers), errors, active_triggers

    async def _is_active(self, namespace: str, trigger: dict[str, Any]) -> bool:
        metadata = trigger.get("metadata") or {}
        kind = trigger["type"]
        if kind in ("cpu", "memory"):
            return True
        if kind == "external-push":
            route_kind = next((k for k, key in PUSH_KEYS.items() if metadata.get(key)), "InterceptorRoute")
            route = metadata.get(PUSH_KEYS[route_kind])
            if not route or self.store.find(route_kind, namespace, route) is None:
                raise TriggerError(f"{route_kind} {namespace}/{route} not found (metadata.{PUSH_KEYS[route_kind]})")
            value = float(self.interceptor.concurrency((route_kind, namespace, route)))
        else:
            value = await self._prometheus_value(metadata)
        threshold = float(metadata.get("activationThreshold", 0) or 0)
        return value > threshold

    async def _prometheus_value(self, metadata: dict[str, Any]) -> float:
        url, query = self.prometheus_url(), metadata.get("query")
        if not query:
            raise TriggerError("metadata.query is empty")
        if url is None:
            raise TriggerError("no Prometheus runs on the local target (install kube-prometheus-stack)")
        client = PromClient(url, timeout=5.0)
        try:
            frame = await asyncio.to_thread(client.query, query)  # the loop also runs the gateway
        except LabError as exc:
            raise TriggerError(str(exc)) from None
        finally:
            client.close()
        if len(frame) > 1:
            raise TriggerError(f"prometheus query {query} returned multiple elements")
        if frame.empty:
            if str(metadata.get("ignoreNullValues", "true")).lower() == "false":
                raise TriggerError(f"prometheus metrics 'prometheus' target may be lost, the result is empty "
                                   f"(query {query}, ignoreNullValues false)")
            return 0.0
        return float(frame["value"].iloc[0])

    def _ensure_hpa(self, so: dict[str, Any], spec: ScalingSpec) -> None:
        """KEDA's generated HPA for 1 <-> N; a paused ScaledObject has none (KEDA deletes it)."""
        wanted = [] if spec.paused else [{
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": f"keda-hpa-{so['metadata']['name']}", "namespace": ns(so),
                         "labels": {"scaledobject.keda.sh/name": so["metadata"]["name"]}},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": so["spec"]["scaleTargetRef"]["name"]},
                     "minReplicas": spec.hpa_min_replicas, "maxReplicas": spec.max_replicas}}]
        self.ensure_children(so, ("HorizontalPodAutoscaler",), wanted)

    def _check_failed(self, so: dict[str, Any], message: str, requeue: float | None) -> Result:
        """KEDA's ScaledObjectCheckFailed: Ready False with the reason, Active Unknown, a Warning event."""
        conditions = [Condition("False", "ScaledObjectCheckFailed", message),
                      Condition("Unknown", "UnknownState", "ScaledObject check failed")]
        previous = (so.get("status") or {}).get("conditions") or []
        if not any(c.get("reason") == "ScaledObjectCheckFailed" and c.get("message") == message for c in previous):
            self.store.record_event(so, "ScaledObjectCheckFailed", f"{message}; see {RUNBOOK}", "Warning")
        status = {**(so.get("status") or {}), "observedGeneration": so["metadata"].get("generation", 1),
                  "conditions": self._conditions(so, {"Ready": conditions[0], "Active": conditions[1]})}
        self.store.set_status("ScaledObject", ns(so), so["metadata"]["name"], status)
        return Result(requeue)

    def _status(self, so: dict[str, Any], decision: Decision, errors: list[str], now: float) -> None:
        wanted = {"Ready": decision.ready, "Paused": decision.paused,
                  "Fallback": Condition("False", "NoFallbackFound", "No fallbacks are active on this scaled object")}
        if decision.active is not None:
            wanted["Active"] = decision.active
        status = {**(so.get("status") or {}),
                  "observedGeneration": so["metadata"].get("generation", 1),
                  "scaleTargetKind": "apps/v1.Deployment",
                  "hpaName": f"keda-hpa-{so['metadata']['name']}",
                  "triggersTypes": ",".join(t.get("type", "") for t in so["spec"].get("triggers") or []),
                  "conditions": self._conditions(so, wanted),
                  "lab": {"lastPoll": now, "triggerErrors": errors}}
        if decision.last_active is not None:
            status["lastActiveTime"] = _iso(decision.last_active)
        self.store.set_status("ScaledObject", ns(so), so["metadata"]["name"], status)

    @staticmethod
    def _conditions(so: dict[str, Any], wanted: dict[str, Condition]) -> list[dict[str, Any]]:
        """KEDA's four conditions in its order; lastTransitionTime moves only when a status flips."""
        previous = {c["type"]: c for c in (so.get("status") or {}).get("conditions") or []}
        out = []
        for type_ in ("Ready", "Active", "Fallback", "Paused"):
            old = previous.get(type_)
            new = wanted.get(type_)
            if new is None:
                if old is not None:
                    out.append(old)
                continue
            since = old["lastTransitionTime"] if old and old.get("status") == new.status else _iso(time.time())
            out.append({"type": type_, "status": new.status, "reason": new.reason, "message": new.message,
                        "lastTransitionTime": since})
        return out
