"""The helper API both targets implement: the verbs a notebook uses, nothing target-specific.

Objects are plain dicts shaped like Kubernetes objects (apiVersion/kind/metadata/spec/status).
Kinds are given as the Kubernetes kind (``"InferenceService"``), names without namespace;
``namespace=None`` means the lab's default namespace.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ContextManager, Iterable

from . import prereqs
from .batch import manual_job
from .diagnosis import ServiceDiagnosis, diagnose_inference_service
from .faults import Injection, Scenario, clear_fault, inject_fault
from .policy.callers import CallResult
from .policy.flows import Flow
from .prom.client import PromClient

Source = str | Path | dict[str, Any] | Iterable[dict[str, Any]]


class Lab(ABC):
    target: str
    namespace: str

    @abstractmethod
    def apply(self, source: Source, variables: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Validate every document first, then apply all in order; nothing is applied if one is invalid.

        `source` is a YAML file, a folder of YAML files, a YAML string, a dict or a list of dicts.
        ``${VAR}`` placeholders are filled from `variables` (then the environment). Returns the
        applied objects as stored.
        """

    @abstractmethod
    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """Raises NotFound."""

    @abstractmethod
    def list(self, kind: str, namespace: str | None = None,
             labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        ...

    @abstractmethod
    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Idempotent: deleting a missing object is not an error."""

    @abstractmethod
    def events(self, kind: str, name: str, namespace: str | None = None,
               children: bool = True) -> list[dict[str, Any]]:
        """Events of the object (and of the objects it owns, if `children`), oldest first."""

    @abstractmethod
    def wait_for(self, kind: str, name: str, condition: str = "Ready", namespace: str | None = None,
                 timeout: float = 120.0) -> dict[str, Any]:
        """Wait until `condition` is True; on timeout raise NotReady with a Diagnosis.

        Also raises at once when the object has failed for good (a Job whose ``Failed`` is True).
        """

    def wait_ready(self, kind: str, name: str, namespace: str | None = None,
                   timeout: float = 120.0) -> dict[str, Any]:
        return self.wait_for(kind, name, "Ready", namespace=namespace, timeout=timeout)

    def run_cronjob_now(self, cronjob: str, job_name: str | None = None,
                        namespace: str | None = None) -> dict[str, Any]:
        """Start a Job from the CronJob's template now, as ``kubectl create job --from=cronjob/…`` does.

        The Job is owned by the CronJob and annotated ``cronjob.kubernetes.io/instantiate: manual``, so
        a lesson need not wait for the schedule; wait for it with ``wait_for("Job", name, "Complete")``.
        """
        source = self.get("CronJob", cronjob, namespace)
        return self.apply(manual_job(source, job_name))[0]

    def variables(self, given: dict[str, str] | None) -> dict[str, str]:
        """Placeholders every manifest may use, overridden by the environment, then by the caller."""
        # LAB_RUNTIME_IMAGE: the lab's model server image (docker/runtime/Dockerfile); push your own build for a cluster.
        # DRIFT_IMAGE: the inference-event receiver and drift job (docker/drift/Dockerfile), likewise.
        # TRANSFORMER_IMAGE, CUSTOM_PREDICTOR_IMAGE, BATCH_SCORER_IMAGE: the inference-shape images
        # (docker/transformer, docker/custom-predictor, docker/batch-scorer), likewise.
        defaults = {"NAMESPACE": self.namespace, "SERVICE_ACCOUNT": "default",
                    "LAB_RUNTIME_IMAGE": "serving-lab/runtime:0.1", "DRIFT_IMAGE": "serving-lab/drift:0.1",
                    "TRANSFORMER_IMAGE": "serving-lab/transformer:0.1",
                    "CUSTOM_PREDICTOR_IMAGE": "serving-lab/custom-predictor:0.1",
                    "BATCH_SCORER_IMAGE": "serving-lab/batch-scorer:0.1"}
        return {**{k: os.environ.get(k, v) for k, v in defaults.items()}, **(given or {})}

    def require(self, *steps: str) -> None:
        """Idempotently create what earlier notebooks would have (e.g. ``"kserve"``, ``"iris"``)."""
        prereqs.require(self, *steps)

    def diagnose(self, service: str, namespace: str | None = None) -> ServiceDiagnosis:
        """Why an InferenceService is not serving: its status, its pods' container exits and its events read
        in turn, the cause named (one of `diagnosis.CAUSES`, or None), the runbook, and the evidence trail."""
        return diagnose_inference_service(self, service, namespace)

    def inject_fault(self, service: str, scenario: str | Scenario | None = None, seed: int | None = None,
                     namespace: str | None = None, timeout: float = 60.0) -> Injection:
        """Redeploy an InferenceService with one of the exit test's faults (`faults.SCENARIOS`): the named
        `scenario`, else one drawn at random with `seed`. Keep the returned Injection to `clear_fault` it."""
        return inject_fault(self, service, scenario, seed, namespace, timeout)

    def clear_fault(self, injection: Injection) -> dict[str, Any]:
        """Apply the spec the fault replaced (wait for Ready afterwards)."""
        return clear_fault(self, injection)

    @property
    @abstractmethod
    def prom(self) -> PromClient:
        """PromQL against this target's Prometheus."""

    @abstractmethod
    def tracking_uri(self) -> str:
        """The MLflow tracking server this target's models are registered in."""

    def model_uri(self, name: str, alias: str | None = None, version: int | None = None,
                  flavor: str = "mlflow") -> str:
        """storageUri of a registered model for this target (registering the lab's models if needed)."""
        from .models import registry  # imports mlflow (seconds): only when a notebook asks for a model

        uri = self.tracking_uri()
        registry.register_lab_models(uri)
        return registry.storage_uri(uri, name, version=version, alias=alias, flavor=flavor,
                                    rewrite=registry.artifact_rewrite())

    @abstractmethod
    def endpoint(self, name: str, namespace: str | None = None) -> tuple[str, str]:
        """(base URL to send requests to, Host header) for an InferenceService."""

    @abstractmethod
    def ingress_url(self) -> str:
        """Base URL of the ingress gateway, for a route known by its Host (e.g. a Flagger HTTPRoute)."""

    def interceptor_endpoint(self, route: str, namespace: str | None = None) -> tuple[str, str]:
        """(base URL, Host header) of an InterceptorRoute: the way in that the KEDA HTTP add-on counts and holds."""
        obj = self.get("InterceptorRoute", route, namespace)
        hosts = [host for rule in obj["spec"].get("rules") or [] for host in rule.get("hosts") or []]
        if not hosts:
            raise ValueError(f"InterceptorRoute {route} has no spec.rules[].hosts: callers have no Host to send")
        return self.interceptor_url(), hosts[0]

    @abstractmethod
    def interceptor_url(self) -> str:
        """Where the HTTP add-on's interceptor proxy answers for this target."""

    @abstractmethod
    def interceptor_holds(self) -> list[dict[str, Any]] | None:
        """Requests the interceptor held for a ready pod (``host``, ``held_at``, ``released_at``, ``outcome``),
        oldest first; None where it keeps no such record (the KEDA HTTP add-on on a cluster)."""

    @abstractmethod
    def container_log(self, pod: str, container: str, namespace: str | None = None) -> str:
        """A container's log; on a cluster each line starts with the kubelet's timestamp (``--timestamps``)."""

    @abstractmethod
    def pod_url(self, pod: str, port: int, namespace: str | None = None) -> ContextManager[str]:
        """``with lab.pod_url(pod, 8080) as url:`` a base URL reaching that pod port directly, past any
        gateway or interceptor (a port-forward on a cluster)."""

    @abstractmethod
    def infer(self, name: str, payload: dict[str, Any], protocol: str = "v2",
              model: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        """POST an inference request through the ingress; raises on a non-2xx answer."""

    @abstractmethod
    def call_as(self, labels: dict[str, str], namespace: str, isvc: str, path: str, method: str = "POST",
                payload: dict[str, Any] | None = None, timeout: float = 3.0,
                isvc_namespace: str | None = None) -> CallResult:
        """One request from a pod with `labels` in `namespace` straight to the predictor Service of `isvc`
        (past the ingress, so a network policy sees this caller): its status, or no answer within `timeout`."""

    @abstractmethod
    def flows(self, namespace: str | None = None, last: int | None = None) -> list[Flow]:
        """Recent network-policy verdicts (Hubble's flows), oldest first; to pods in `namespace` if given."""
