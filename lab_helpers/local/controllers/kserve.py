"""KServe's InferenceService controller in Standard mode: runtime selection, Deployment, Service, route, status.

Mirrors upstream's behaviour where a learner can see it (stack-facts §1-3): runtime choice by
format + version + protocol + priority, the failure reasons of `modelStatus.lastFailureInfo`, and
conditions PredictorReady / IngressReady / Ready with `status.url` from the Host template.
"""
from __future__ import annotations

import sys
from typing import Any

from ..catalogue import CHARTS, local_server_for
from ..kubelet import RUNTIME_MARKER
from .base import Controller, condition, is_true, ns, owned_by
from .workloads import pod_ready

INGRESS_DOMAIN = "example.com"
STORAGE_MODULE = "lab_helpers.runtime.storage"


class RuntimeProblem(Exception):
    """A spec/runtime mismatch: becomes modelStatus InvalidSpec with this reason."""

    def __init__(self, reason: str, message: str):
        self.reason, self.message = reason, message
        super().__init__(f"{reason}: {message}")


def controller_installed(store, component: str) -> bool:
    """True when a Ready HelmRelease installed the chart that runs this controller."""
    charts = {name for name, chart in CHARTS.items() if component in chart.controllers}
    for release in store.list("HelmRelease"):
        history = (release.get("status") or {}).get("history") or [{}]
        if is_true(release) and history[0].get("chartName") in charts:
            return True
    return False


def _protocol(model: dict[str, Any]) -> str:
    return model.get("protocolVersion") or "v1"


def _supports(runtime: dict[str, Any], fmt: dict[str, Any], auto_only: bool) -> bool:
    for supported in runtime["spec"].get("supportedModelFormats") or []:
        if supported.get("name") != fmt.get("name"):
            continue
        if auto_only and not supported.get("autoSelect"):
            continue
        if fmt.get("version") and supported.get("version") != fmt["version"]:
            continue
        return True
    return False


def _priority(runtime: dict[str, Any], fmt: dict[str, Any]) -> int:
    return max((s.get("priority", 0) for s in runtime["spec"].get("supportedModelFormats") or []
                if s.get("name") == fmt.get("name")), default=0)


def select_runtime(store, namespace: str, model: dict[str, Any]) -> dict[str, Any]:
    """Pick the (Cluster)ServingRuntime like KServe's predictor_model.go; raise RuntimeProblem otherwise."""
    fmt = model.get("modelFormat") or {}
    named = model.get("runtime")
    if named:
        runtime = store.find("ServingRuntime", namespace, named) or store.find("ClusterServingRuntime", "", named)
        if runtime is None:
            raise RuntimeProblem("RuntimeNotRecognized", "Waiting for runtime to become available")
        if runtime["spec"].get("disabled"):
            raise RuntimeProblem("RuntimeDisabled", "Specified runtime is disabled")
        if model.get("protocolVersion") and model["protocolVersion"] not in runtime["spec"].get("protocolVersions", []):
            raise RuntimeProblem("NoSupportingRuntime", f"Specified runtime {named} does not support specified "
                                                        f"protocol version {model['protocolVersion']}")
        if not _supports(runtime, fmt, auto_only=False):
            raise RuntimeProblem("NoSupportingRuntime", f"Specified runtime {named} does not support specified "
                                                        f"framework/version")
        return runtime
    protocol = _protocol(model)
    for kind, where in (("ServingRuntime", namespace), ("ClusterServingRuntime", None)):
        candidates = [r for r in store.list(kind, where)
                      if not r["spec"].get("disabled") and _supports(r, fmt, auto_only=True)
                      and protocol in r["spec"].get("protocolVersions", [])]
        if candidates:
            return sorted(candidates, key=lambda r: -_priority(r, fmt))[0]
    raise RuntimeProblem("NoSupportingRuntime", "No runtime found to support specified framework/version")


def _merge_resources(runtime_container: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in ("requests", "limits"):
        values = {**((runtime_container.get("resources") or {}).get(part) or {}),
                  **((model.get("resources") or {}).get(part) or {})}
        if values:
            merged[part] = values
    return merged


def predictor_deployment(isvc: dict[str, Any], runtime: dict[str, Any]) -> dict[str, Any]:
    """The `<isvc>-predictor` Deployment; its container `command` is what the local kubelet runs."""
    name, namespace = isvc["metadata"]["name"], ns(isvc)
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    containers = runtime["spec"].get("containers") or []
    container = next((c for c in containers if c.get("name") == "kserve-container"), None)
    if container is None:
        raise RuntimeProblem("InvalidPredictorSpec", f"no container configuration found in selected serving "
                                                     f"runtime {runtime['metadata']['name']}: a container must be "
                                                     "named kserve-container")
    server = local_server_for(container.get("image", ""))
    if server is None:
        raise RuntimeProblem("InvalidPredictorSpec", f"the local target has no process for image "
                                                     f"{container.get('image')!r}")
    fmt = (model.get("modelFormat") or {}).get("name", "")
    protocol = "v2" if server == "mlserver" else _protocol(model)
    app = f"isvc.{name}-predictor"
    labels = {"app": app, "serving.kserve.io/inferenceservice": name, "component": "predictor",
              **(predictor.get("labels") or {})}
    storage_uri = model.get("storageUri")
    pod_spec: dict[str, Any] = {
        "containers": [{
            "name": "kserve-container", "image": container.get("image", ""),
            "command": [sys.executable, "-m", RUNTIME_MARKER],
            "args": ["--model-name", name, "--model-dir", "models", "--model-format",
                     "mlflow" if fmt == "mlflow" else fmt, "--http-port", "$(PORT)", "--protocol", protocol],
            "env": [*container.get("env", []), *model.get("env", [])],
            "resources": _merge_resources(container, model),
            # Declared ports come from the InferenceService (KServe merges them into kserve-container); the
            # built-in runtimes declare none, which is why a PodMonitor finds nothing to scrape (stack-facts §7).
            "ports": model.get("ports") or container.get("ports") or [],
        }],
    }
    if storage_uri:
        pod_spec["initContainers"] = [{"name": "storage-initializer", "image": "kserve/storage-initializer:v0.20.0",
                                       "command": [sys.executable, "-m", STORAGE_MODULE],
                                       "args": [storage_uri, "models"]}]
    annotations = {**(predictor.get("annotations") or {})}
    if storage_uri:
        annotations["serving.kserve.io/storage-initializer-sourceuri"] = storage_uri
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"{name}-predictor", "namespace": namespace, "labels": labels},
        "spec": {"replicas": int(predictor.get("minReplicas", 1)),
                 "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec}},
    }


def predictor_service(isvc: dict[str, Any]) -> dict[str, Any]:
    name = isvc["metadata"]["name"]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"{name}-predictor", "namespace": ns(isvc),
                         "labels": {"serving.kserve.io/inferenceservice": name, "component": "predictor"}},
            "spec": {"selector": {"app": f"isvc.{name}-predictor"},
                     "ports": [{"name": f"{name}-predictor", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def host_of(isvc: dict[str, Any]) -> str:
    return f"{isvc['metadata']['name']}-{ns(isvc)}.{INGRESS_DOMAIN}"


def predictor_ingress(isvc: dict[str, Any]) -> dict[str, Any]:
    name = isvc["metadata"]["name"]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns(isvc),
                         "labels": {"serving.kserve.io/inferenceservice": name}},
            "spec": {"rules": [{"host": host_of(isvc), "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": f"{name}-predictor", "port": {"number": 80}}}}]}}]}}


def model_status(pods: list[dict[str, Any]], ready: bool) -> dict[str, Any]:
    """modelStatus from the predictor pods, as KServe's PropagateModelStatus reads them (stack-facts §3.1)."""
    ready_pods = [p for p in pods if pod_ready(p)]
    copies = {"totalCopies": len(ready_pods)}
    for pod in pods:
        status = pod.get("status") or {}
        for init in status.get("initContainerStatuses") or []:
            term = (init.get("state") or {}).get("terminated") or {}
            if term and term.get("exitCode", 0) != 0:
                return _failed(term, pod, copies)
        for main in status.get("containerStatuses") or []:
            # Crash-looping, or restarted after a crash and not ready again yet: the last failure stands.
            last = (main.get("lastState") or {}).get("terminated") or {}
            if not main.get("ready") and last.get("exitCode") not in (0, None):
                return _failed(last, pod, copies)
    if ready:
        return {"transitionStatus": "UpToDate", "copies": copies,
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"}}
    if not pods:
        return {"transitionStatus": "InProgress", "copies": copies,
                "states": {"activeModelState": "Pending", "targetModelState": "Pending"}}
    return {"transitionStatus": "InProgress", "copies": copies,
            "states": {"activeModelState": "Loading" if not ready_pods else "Loaded", "targetModelState": "Loaded"}}


def _failed(term: dict[str, Any], pod: dict[str, Any], copies: dict[str, Any]) -> dict[str, Any]:
    message = term.get("message", "")
    if term.get("reason") == "OOMKilled":
        message = f"OOMKilled: {message}"
    return {"transitionStatus": "BlockedByFailedLoad", "copies": {**copies, "failedCopies": 1},
            "states": {"activeModelState": "FailedToLoad", "targetModelState": "FailedToLoad"},
            "lastFailureInfo": {"reason": "ModelLoadFailed", "message": message, "exitCode": term.get("exitCode"),
                                "location": pod["metadata"]["name"], "time": term.get("finishedAt")}}


class InferenceServiceController(Controller):
    kinds = ("InferenceService",)

    async def reconcile(self, isvc: dict[str, Any]) -> None:
        if not controller_installed(self.store, "kserve-controller-manager"):
            return  # CRD served but no controller: the object just sits there, as on a cluster
        namespace = ns(isvc)
        prev = isvc.get("status") or {}
        mode = (isvc["metadata"].get("annotations") or {}).get("serving.kserve.io/deploymentMode", "Standard")
        mode = {"RawDeployment": "Standard", "Serverless": "Knative"}.get(mode, mode)
        if mode != "Standard":
            self.store.record_event(isvc, "ServerlessModeRejected", "It is not possible to use Knative deployment "
                                    "mode when Knative Services are not available", "Warning")
            return
        model = isvc["spec"].get("predictor", {}).get("model") or {}
        try:
            runtime = select_runtime(self.store, namespace, model)
            deployment = predictor_deployment(isvc, runtime)
        except RuntimeProblem as problem:
            self._invalid_spec(isvc, prev, problem)
            return
        deploy = self.ensure_child(isvc, deployment)
        self.ensure_child(isvc, predictor_service(isvc))
        visibility = (isvc["metadata"].get("labels") or {}).get("networking.kserve.io/visibility")
        if visibility != "cluster-local":
            self.ensure_child(isvc, predictor_ingress(isvc))
        pods = [p for p in self.store.list("Pod", namespace) if owned_by(p, deploy)]
        self._write_status(isvc, prev, deploy, runtime, pods, visibility != "cluster-local")

    def _write_status(self, isvc, prev, deploy, runtime, pods, exposed: bool) -> None:
        name, namespace = isvc["metadata"]["name"], ns(isvc)
        conds = prev.get("conditions")
        available = next((c for c in (deploy.get("status") or {}).get("conditions", []) if c["type"] == "Available"),
                         {"status": "False", "reason": "Pending", "message": "Deployment has no status yet"})
        predictor_ready = available["status"] == "True"
        ready = predictor_ready and exposed
        url = f"http://{host_of(isvc)}"
        status = {
            "observedGeneration": isvc["metadata"]["generation"],
            "deploymentMode": "Standard",
            "url": url if exposed else f"http://{name}-predictor.{namespace}.svc.cluster.local",
            "address": {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"},
            runtime_key(runtime): runtime["metadata"]["name"],
            "components": {"predictor": {"url": url}},
            "conditions": [
                condition("IngressReady", exposed, "" if exposed else "CreatingIngress", "", conds),
                condition("PredictorReady", predictor_ready, "" if predictor_ready else available.get("reason", ""),
                          "" if predictor_ready else available.get("message", ""), conds),
                condition("Ready", ready, "" if ready else "PredictorNotReady" if exposed else "IngressNotReady",
                          "", conds),
            ],
            "modelStatus": model_status(pods, ready),
        }
        was_ready = is_true(isvc)
        self.store.set_status("InferenceService", namespace, name, status)
        if ready and not was_ready:
            self.store.record_event(isvc, "InferenceServiceReady", f"InferenceService [{name}] is Ready")
        failure = status["modelStatus"].get("lastFailureInfo")
        if failure and failure != (prev.get("modelStatus") or {}).get("lastFailureInfo"):
            self.store.record_event(isvc, failure["reason"], failure["message"], "Warning")

    def _invalid_spec(self, isvc, prev, problem: RuntimeProblem) -> None:
        name, namespace = isvc["metadata"]["name"], ns(isvc)
        conds = prev.get("conditions")
        status = {
            "observedGeneration": isvc["metadata"]["generation"], "deploymentMode": "Standard",
            "conditions": [condition("PredictorReady", False, problem.reason, problem.message, conds),
                           condition("Ready", False, problem.reason, problem.message, conds)],
            "modelStatus": {"transitionStatus": "InvalidSpec",
                            "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
                            "lastFailureInfo": {"reason": problem.reason, "message": problem.message}},
        }
        before = (prev.get("modelStatus") or {}).get("lastFailureInfo")
        self.store.set_status("InferenceService", namespace, name, status)
        if before != status["modelStatus"]["lastFailureInfo"]:
            self.store.record_event(isvc, "InternalError", f"{problem.reason}: {problem.message}", "Warning")


def runtime_key(runtime: dict[str, Any]) -> str:
    return "clusterServingRuntimeName" if runtime["kind"] == "ClusterServingRuntime" else "servingRuntimeName"
