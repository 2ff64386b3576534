"""KServe's InferenceService controller in Standard mode: runtime selection, Deployment, Service, route, status.

Mirrors upstream's behaviour where a learner can see it (kserve pkg/controller/v1beta1/inferenceservice,
https://github.com/kserve/kserve): runtime choice by format + version + protocol + priority, the failure reasons of `modelStatus.lastFailureInfo`, and
conditions PredictorReady / IngressReady / Ready with `status.url` from the Host template.
With ``spec.transformer`` the transformer is a component of its own: its Deployment's Available becomes
TransformerReady, and until it is True, IngressReady is False with reason "Transformer ingress not
created" (kube_ingress_reconciler.go), so Ready waits for both components. A custom predictor
(``spec.predictor.containers``) skips runtime selection.
The children it wants are built by `kserve_children`; children it no longer wants are deleted.
"""
from __future__ import annotations

from typing import Any

from ..catalogue import CHARTS
from .base import DONE, Controller, Result, TemporaryError, condition, is_true, ns, owned_by
from .kserve_children import (RuntimeProblem, autoscaler_class, component_hpa, component_scaledobject,
                              component_service, entry_point, host_of, predictor_deployment, predictor_ingress,
                              predictor_service, transformer_deployment)
from ..pods import pod_ready

__all__ = ["InferenceServiceController", "RuntimeProblem", "host_of", "model_status", "predictor_deployment",
           "select_runtime"]
CHILD_KINDS = ("Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "ScaledObject")


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


def predictor_condition(deploy: dict[str, Any], pods: list[dict[str, Any]]) -> tuple[bool, str, str]:
    """PredictorReady as (ok, reason, message): the Deployment's Available condition, as KServe propagates it
    (PropagateRawStatus), checked against the pods that exist now.

    The Deployment's status is written by another loop and can be a step behind (a pod just deleted);
    the pods cannot, so a predictor with fewer ready pods than replicas is not Ready whatever that says.
    """
    available = next((c for c in (deploy.get("status") or {}).get("conditions", []) if c["type"] == "Available"),
                     {"status": "False", "reason": "Pending", "message": "Deployment has no status yet"})
    desired = int((deploy.get("spec") or {}).get("replicas", 1))
    enough = sum(pod_ready(p) for p in pods) >= desired
    if available["status"] == "True" and enough:
        return True, "", ""
    if available["status"] == "True":  # the Deployment's wording, for what its next status will say
        return False, "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
    return False, available.get("reason", ""), available.get("message", "")


def readiness_failures(store, pods: list[dict[str, Any]]) -> dict[str, str]:
    """{pod name: the kubelet's readiness-probe failure} for pods that were Ready and lost it (the model
    was unloaded, the server stopped answering): the Warning event the kubelet recorded on the pod."""
    failures = {}
    for pod in pods:
        event = None if pod_ready(pod) else store.last_event(pod)
        if event and event["reason"] == "Unhealthy" and event["message"].startswith("Readiness probe failed"):
            failures[pod["metadata"]["name"]] = event["message"]
    return failures


def model_status(pods: list[dict[str, Any]], ready: bool, unready: dict[str, str] | None = None) -> dict[str, Any]:
    """modelStatus from the predictor pods, as KServe's PropagateModelStatus reads them.

    `unready` (from `readiness_failures`) adds what upstream leaves to the pod's events: a runtime that
    was serving and fails its readiness probe now gets lastFailureInfo RuntimeUnhealthy, a reason of
    KServe's FailureReason enum ("ServingRuntime containers failed to start or are unhealthy"), with
    the probe's failure as message, so `kubectl get isvc -o yaml` says why it is not Ready.

    Upstream: https://github.com/kserve/kserve/blob/v0.20.0/pkg/apis/serving/v1beta1/inference_service_status.go#L721
    """
    ready_pods = [p for p in pods if pod_ready(p)]
    copies = {"totalCopies": len(ready_pods)}
    for pod in pods:
        status = pod.get("status") or {}
        for init in status.get("initContainerStatuses") or []:
            # Failed, or waiting in CrashLoopBackOff to be rerun: then its last exit is the failure (as upstream).
            term = (init.get("state") or {}).get("terminated") or (init.get("lastState") or {}).get("terminated") or {}
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
    if unready:
        name, why = min(unready.items())
        return {"transitionStatus": "InProgress", "copies": copies,
                "states": {"activeModelState": "Pending", "targetModelState": "Loaded"},
                "lastFailureInfo": {"reason": "RuntimeUnhealthy", "location": name,
                                    "message": f"container kserve-container is running but not ready: {why}"}}
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
    owns = CHILD_KINDS
    # Pods feed modelStatus; runtimes and installed charts decide whether (and how) it can be served.
    watches = ("Pod", "ClusterServingRuntime", "ServingRuntime", "HelmRelease", "CustomResourceDefinition")

    async def reconcile(self, isvc: dict[str, Any]) -> Result:
        if not controller_installed(self.store, "kserve-controller-manager"):
            return DONE  # CRD served but no controller: the object just sits there, as on a cluster
        namespace = ns(isvc)
        prev = isvc.get("status") or {}
        mode = (isvc["metadata"].get("annotations") or {}).get("serving.kserve.io/deploymentMode", "Standard")
        mode = {"RawDeployment": "Standard", "Serverless": "Knative"}.get(mode, mode)
        if mode != "Standard":
            self.store.record_event(isvc, "ServerlessModeRejected", "It is not possible to use Knative deployment "
                                    "mode when Knative Services are not available", "Warning")
            return DONE
        predictor = isvc["spec"].get("predictor", {})
        try:
            custom = bool(predictor.get("containers"))
            runtime = None if custom else select_runtime(self.store, namespace, predictor.get("model") or {})
            scaler = autoscaler_class(isvc)
            wanted = [predictor_deployment(isvc, runtime, owns_replicas=scaler == "none"), predictor_service(isvc)]
            components = ["predictor"]
            if isvc["spec"].get("transformer"):
                wanted += [transformer_deployment(isvc, owns_replicas=scaler == "none"),
                           component_service(isvc, "transformer")]
                components.append("transformer")
            visibility = (isvc["metadata"].get("labels") or {}).get("networking.kserve.io/visibility")
            exposed = visibility != "cluster-local"
            if exposed:
                wanted.append(predictor_ingress(isvc))
            if scaler == "hpa":
                wanted += [component_hpa(isvc, component) for component in components]
            elif scaler == "keda":
                wanted += [component_scaledobject(isvc, component) for component in components]
        except RuntimeProblem as problem:
            self._invalid_spec(isvc, prev, problem)
            return DONE
        if scaler == "keda" and self.store.find("CustomResourceDefinition", "", "scaledobjects.keda.sh") is None:
            raise TemporaryError('failed to create ScaledObject: no matches for kind "ScaledObject" in version '
                                 '"keda.sh/v1alpha1" (install KEDA first: manifests/platform/)')
        children = self.ensure_children(isvc, CHILD_KINDS, wanted)
        deploy = children[0]
        pods = [p for p in self.store.list("Pod", namespace) if owned_by(p, deploy)]
        transformer = None
        if isvc["spec"].get("transformer"):
            transformer_deploy = next(c for c in children if c["kind"] == "Deployment" and c is not deploy)
            # KServe propagates every component's Deployment the same way (PropagateRawStatus).
            transformer = predictor_condition(transformer_deploy, [p for p in self.store.list("Pod", namespace)
                                                                   if owned_by(p, transformer_deploy)])
        self._write_status(isvc, prev, deploy, runtime, pods, exposed, transformer)
        return DONE

    def _write_status(self, isvc, prev, deploy, runtime, pods, exposed: bool,
                      transformer: tuple[bool, str, str] | None) -> None:
        name, namespace = isvc["metadata"]["name"], ns(isvc)
        conds = prev.get("conditions")
        predictor_ready, reason, message = predictor_condition(deploy, pods)
        # A cluster-local service gets no Ingress, and its IngressReady is True all the same: its URL is the
        # entry point Service's cluster address (kserve reconcilers/ingress/kube_ingress_reconciler.go, v0.20.0).
        ingress_ready = transformer is None or transformer[0]
        ready = predictor_ready and ingress_ready
        url = f"http://{host_of(isvc)}"
        address = f"http://{entry_point(isvc)}.{namespace}.svc.cluster.local"
        conditions = [condition("IngressReady", ingress_ready,
                                "" if ingress_ready else "Transformer ingress not created", "", conds),
                      condition("PredictorReady", predictor_ready, reason, message, conds)]
        components: dict[str, Any] = {"predictor": {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"
                                                    if transformer else url}}
        if transformer is not None:
            conditions.append(condition("TransformerReady", *transformer, conds))
            components["transformer"] = {"url": url}
        not_ready = "PredictorNotReady" if not predictor_ready else "IngressNotReady"
        conditions.append(condition("Ready", ready, "" if ready else not_ready, "", conds))
        status = {
            "observedGeneration": isvc["metadata"]["generation"],
            "deploymentMode": "Standard",
            "url": url if exposed else address,
            "address": {"url": address},
            "components": components,
            "conditions": conditions,
            "modelStatus": model_status(pods, predictor_ready, readiness_failures(self.store, pods)),
        }
        if runtime is not None:
            status[runtime_key(runtime)] = runtime["metadata"]["name"]
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
