"""Pure builders of what KServe's Standard-mode reconcilers create for an InferenceService.

Deployment ``<isvc>-predictor`` (the runtime's ``kserve-container`` merged with the model spec, or a
custom predictor's own ``containers[0]``, and a storage-initializer), Service, Ingress, and with
``spec.transformer`` a ``<isvc>-transformer`` Deployment and Service whose container is told the
predictor's cluster-local host by ``--predictor_host`` and which becomes the Ingress's backend
(kserve components/transformer.go, v1beta1/transformer_custom.go, ingress/kube_ingress_reconciler.go).
Then, for each component, the autoscaler the class annotation asks for:
``hpa`` (the default) an autoscaling/v2 HPA, ``keda`` a KEDA ScaledObject, ``external`` and ``none``
nothing. Who owns ``Deployment.spec.replicas`` follows the class: only for ``none`` does KServe
write it (``replicas = minReplicas``); otherwise the Deployment is built without it, so the value
the HPA, KEDA or Flagger wrote through the scale subresource stands (kserve
pkg/controller/v1beta1/inferenceservice/reconcilers/deployment, hpa, keda).
"""
from __future__ import annotations

import copy
from typing import Any

from ...gateway.inference_logger import logger_annotations
from .base import ns

INGRESS_DOMAIN = "example.com"
AUTOSCALER_ANNOTATION = "serving.kserve.io/autoscalerClass"
AUTOSCALER_CLASSES = ("hpa", "keda", "external", "none")
SERVER_TYPE_ANNOTATION = "serving.kserve.io/server-type"
PROVISION_VOLUME = "kserve-provision-location"
STORAGE_URI_ENV = "STORAGE_URI"  # a custom container's model location, for the storage-initializer
MODEL_MOUNT = "/mnt/models"
STORAGE_INITIALIZER_IMAGE = "kserve/storage-initializer:v0.20.0"
DEFAULT_CPU_UTILIZATION = 80  # the HPA target when the InferenceService names no scaleTarget
# KServe fills the modelClass label from the model format; kserve-mlserver's env reads it.
MLSERVER_MODEL_CLASSES = {"sklearn": "mlserver_sklearn.SKLearnModel", "xgboost": "mlserver_xgboost.XGBoostModel",
                          "lightgbm": "mlserver_lightgbm.LightGBMModel", "mlflow": "mlserver_mlflow.MLflowRuntime"}
# The lab's readiness probe when neither runtime nor model declares one: Ready means the model is loaded.
READINESS_PERIOD_SECONDS = 1


class RuntimeProblem(Exception):
    """A spec/runtime mismatch: becomes modelStatus InvalidSpec with this reason."""

    def __init__(self, reason: str, message: str):
        self.reason, self.message = reason, message
        super().__init__(f"{reason}: {message}")


def autoscaler_class(isvc: dict[str, Any]) -> str:
    value = (isvc["metadata"].get("annotations") or {}).get(AUTOSCALER_ANNOTATION, "hpa")
    if value not in AUTOSCALER_CLASSES:
        raise RuntimeProblem("InvalidPredictorSpec", f"[{value}] is not a supported autoscaler class "
                                                     f"(annotation {AUTOSCALER_ANNOTATION}: one of "
                                                     f"{', '.join(AUTOSCALER_CLASSES)})")
    return value


def predictor_name(isvc: dict[str, Any]) -> str:
    return f"{isvc['metadata']['name']}-predictor"


def transformer_name(isvc: dict[str, Any]) -> str:
    return f"{isvc['metadata']['name']}-transformer"


def entry_point(isvc: dict[str, Any]) -> str:
    """The Service the route sends callers to: the transformer when there is one, else the predictor."""
    return transformer_name(isvc) if isvc["spec"].get("transformer") else predictor_name(isvc)


def predictor_host(isvc: dict[str, Any]) -> str:
    """What KServe passes as ``--predictor_host``: ``<isvc>-predictor.<namespace>``, resolved by cluster DNS."""
    return f"{predictor_name(isvc)}.{ns(isvc)}"


def host_of(isvc: dict[str, Any]) -> str:
    return f"{isvc['metadata']['name']}-{ns(isvc)}.{INGRESS_DOMAIN}"


def _merge_resources(runtime_container: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in ("requests", "limits"):
        values = {**((runtime_container.get("resources") or {}).get(part) or {}),
                  **((model.get("resources") or {}).get(part) or {})}
        if values:
            merged[part] = values
    return merged


def _templated(value: str, name: str, model_class: str) -> str:
    """KServe's ServingRuntime placeholders: ``{{.Name}}`` and ``{{.Labels.modelClass}}``."""
    return value.replace("{{.Name}}", name).replace("{{.Labels.modelClass}}", model_class)


def custom_predictor_container(isvc: dict[str, Any]) -> dict[str, Any]:
    """A custom predictor's ``containers[0]`` as written: KServe adds nothing to its args, and a
    ``STORAGE_URI`` env asks for the storage-initializer (mounted at /mnt/models)."""
    container = copy.deepcopy(isvc["spec"]["predictor"]["containers"][0])
    if _env_value(container, STORAGE_URI_ENV):
        container.setdefault("volumeMounts", []).append(
            {"name": PROVISION_VOLUME, "mountPath": MODEL_MOUNT, "readOnly": True})
    return container


def _env_value(container: dict[str, Any], name: str) -> str | None:
    return next((e.get("value") for e in container.get("env") or [] if e.get("name") == name), None)


def transformer_container(isvc: dict[str, Any]) -> dict[str, Any]:
    """The transformer's ``containers[0]`` with the args KServe appends when absent (``--model_name``,
    ``--predictor_host``, ``--http_port``) and the ``INFERENCE_SERVICE_NAME`` env
    (CustomTransformer.GetContainer)."""
    container = copy.deepcopy(isvc["spec"]["transformer"]["containers"][0])
    args = [str(a) for a in container.get("args") or []]
    for flag, value in (("--model_name", isvc["metadata"]["name"]), ("--predictor_host", predictor_host(isvc)),
                        ("--http_port", "8080")):
        if not any(a == flag or a.startswith(flag + "=") for a in args):
            args += [flag, value]
    container["args"] = args
    container["env"] = [*(container.get("env") or []),
                        {"name": "INFERENCE_SERVICE_NAME", "value": isvc["metadata"]["name"]}]
    return container


def predictor_container(isvc: dict[str, Any], runtime: dict[str, Any]) -> dict[str, Any]:
    """The runtime's ``kserve-container`` with the model spec merged in, as KServe builds it."""
    name = isvc["metadata"]["name"]
    model = isvc["spec"]["predictor"].get("model") or {}
    container = next((c for c in runtime["spec"].get("containers") or [] if c.get("name") == "kserve-container"),
                     None)
    if container is None:
        raise RuntimeProblem("InvalidPredictorSpec", f"no container configuration found in selected serving "
                                                     f"runtime {runtime['metadata']['name']}: a container must be "
                                                     "named kserve-container")
    fmt = (model.get("modelFormat") or {}).get("name", "")
    model_class = MLSERVER_MODEL_CLASSES.get(fmt, "")
    env = [{**e, "value": _templated(e["value"], name, model_class)} if "value" in e else e
           for e in [*container.get("env", []), *model.get("env", [])]]
    if (runtime["spec"].get("annotations") or {}).get(SERVER_TYPE_ANNOTATION) == "mlserver":
        env += [{"name": "MLSERVER_MODEL_NAME", "value": name}, {"name": "MLSERVER_MODEL_URI", "value": MODEL_MOUNT}]
    out: dict[str, Any] = {
        "name": "kserve-container", "image": model.get("image") or container.get("image", ""),
        "args": [_templated(a, name, model_class) for a in [*container.get("args", []), *model.get("args", [])]],
        "env": env, "resources": _merge_resources(container, model),
        # Declared ports come from the InferenceService (KServe merges them into kserve-container); the
        # built-in runtimes declare none, which is why a PodMonitor finds nothing to scrape.
        "ports": model.get("ports") or container.get("ports") or [],
        "readinessProbe": model.get("readinessProbe") or container.get("readinessProbe") or {
            "httpGet": {"path": f"/v2/models/{name}/ready", "port": 8080},
            "periodSeconds": READINESS_PERIOD_SECONDS, "failureThreshold": 3},
    }
    command = model.get("command") or container.get("command")
    if command:
        out["command"] = list(command)
    liveness = model.get("livenessProbe") or container.get("livenessProbe")
    if liveness:
        out["livenessProbe"] = liveness
    if model.get("storageUri"):
        out["volumeMounts"] = [{"name": PROVISION_VOLUME, "mountPath": MODEL_MOUNT, "readOnly": True}]
    return out


def predictor_deployment(isvc: dict[str, Any], runtime: dict[str, Any] | None,
                         owns_replicas: bool) -> dict[str, Any]:
    """The ``<isvc>-predictor`` Deployment; `spec.replicas` only when KServe owns it (class ``none``).

    `runtime` is None for a custom predictor (``spec.predictor.containers``)."""
    predictor = isvc["spec"]["predictor"]
    if runtime is None:
        container = custom_predictor_container(isvc)
        storage_uri = _env_value(container, STORAGE_URI_ENV)
    else:
        container = predictor_container(isvc, runtime)
        storage_uri = (predictor.get("model") or {}).get("storageUri")
    return _component_deployment(isvc, "predictor", container, storage_uri,
                                 int(predictor.get("minReplicas", 1)) if owns_replicas else None)


def transformer_deployment(isvc: dict[str, Any], owns_replicas: bool) -> dict[str, Any]:
    """The ``<isvc>-transformer`` Deployment; like the predictor's, `spec.replicas` only for class ``none``."""
    transformer = isvc["spec"]["transformer"]
    return _component_deployment(isvc, "transformer", transformer_container(isvc), None,
                                 int(transformer.get("minReplicas", 1)) if owns_replicas else None)


def _component_deployment(isvc: dict[str, Any], component: str, container: dict[str, Any],
                          storage_uri: str | None, replicas: int | None) -> dict[str, Any]:
    name, namespace = isvc["metadata"]["name"], ns(isvc)
    spec_part = isvc["spec"][component]
    deploy_name = f"{name}-{component}"
    app = f"isvc.{deploy_name}"
    labels = {"app": app, "serving.kserve.io/inferenceservice": name, "component": component,
              **(spec_part.get("labels") or {})}
    pod_spec: dict[str, Any] = {"containers": [container]}
    # The logger spec travels as internal annotations, which the agent injector turns into the agent's flags.
    annotations = {**(spec_part.get("annotations") or {}), **logger_annotations(spec_part.get("logger"))}
    if storage_uri:
        pod_spec["initContainers"] = [{
            "name": "storage-initializer", "image": STORAGE_INITIALIZER_IMAGE, "args": [storage_uri, MODEL_MOUNT],
            "volumeMounts": [{"name": PROVISION_VOLUME, "mountPath": MODEL_MOUNT}]}]
        pod_spec["volumes"] = [{"name": PROVISION_VOLUME, "emptyDir": {}}]
        annotations["serving.kserve.io/storage-initializer-sourceuri"] = storage_uri
    if spec_part.get("serviceAccountName"):
        pod_spec["serviceAccountName"] = spec_part["serviceAccountName"]
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": app}},
                            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": deploy_name, "namespace": namespace, "labels": labels}, "spec": spec}


def _component_labels(isvc: dict[str, Any], component: str = "predictor") -> dict[str, str]:
    return {"serving.kserve.io/inferenceservice": isvc["metadata"]["name"], "component": component}


def predictor_service(isvc: dict[str, Any]) -> dict[str, Any]:
    return component_service(isvc, "predictor")


def component_service(isvc: dict[str, Any], component: str) -> dict[str, Any]:
    """``<isvc>-<component>``: port 80 to the container's 8080, selecting that component's pods."""
    name = f"{isvc['metadata']['name']}-{component}"
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns(isvc), "labels": _component_labels(isvc, component)},
            "spec": {"selector": {"app": f"isvc.{name}"},
                     "ports": [{"name": name, "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def predictor_ingress(isvc: dict[str, Any]) -> dict[str, Any]:
    name = isvc["metadata"]["name"]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns(isvc), "labels": {"serving.kserve.io/inferenceservice": name}},
            "spec": {"rules": [{"host": host_of(isvc), "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": entry_point(isvc), "port": {"number": 80}}}}]}}]}}


def _replica_bounds(isvc: dict[str, Any], floor: int, component: str) -> tuple[int, int]:
    spec_part = isvc["spec"][component]
    low = max(int(spec_part.get("minReplicas", 1)), floor)
    return low, max(int(spec_part.get("maxReplicas", 0) or 0), low)


def component_hpa(isvc: dict[str, Any], component: str = "predictor") -> dict[str, Any]:
    """Class ``hpa``, for each component: KServe raises a minReplicas below 1 to 1 (an HPA cannot scale to zero)."""
    low, high = _replica_bounds(isvc, 1, component)
    spec_part = isvc["spec"][component]
    name = f"{isvc['metadata']['name']}-{component}"
    metric = spec_part.get("scaleMetric", "cpu")
    target = {"type": "Utilization", "averageUtilization": int(spec_part.get("scaleTarget", DEFAULT_CPU_UTILIZATION))}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": ns(isvc), "labels": _component_labels(isvc, component)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": low, "maxReplicas": high,
                     "metrics": [{"type": "Resource", "resource": {"name": metric, "target": target}}]}}


def _keda_trigger(metric: dict[str, Any]) -> dict[str, Any]:
    """One ``autoScaling.metrics`` entry as KServe's KEDA reconciler turns it into a trigger."""
    if metric.get("type") == "Resource":
        resource = metric["resource"]
        target = resource.get("target") or {}
        value = target.get("averageUtilization") or target.get("averageValue") or target.get("value")
        return {"type": resource["name"], "metricType": target.get("type", "Utilization"),
                "metadata": {"value": str(value)}}
    if metric.get("type") == "External":
        external = metric["external"]
        source = external.get("metric") or {}
        trigger: dict[str, Any] = {"type": source.get("backend", "prometheus"), "metadata": {
            "serverAddress": source.get("serverAddress", ""), "query": source.get("query", ""),
            "threshold": str((external.get("target") or {}).get("value", ""))}}
        if source.get("namespace"):
            trigger["metadata"]["namespace"] = source["namespace"]
        auth = external.get("authenticationRef") or {}
        if auth.get("authModes"):
            trigger["metadata"]["authModes"] = auth["authModes"]
        if (auth.get("authenticationRef") or {}).get("name"):
            trigger["authenticationRef"] = {"name": auth["authenticationRef"]["name"]}
        return trigger
    raise RuntimeProblem("InvalidPredictorSpec", f"autoScaling.metrics type {metric.get('type')!r} is not handled "
                                                 "by the local KServe controller (Resource or External)")


def component_scaledobject(isvc: dict[str, Any], component: str = "predictor") -> dict[str, Any]:
    """Class ``keda``, for each component: minReplicas passes through unchanged as minReplicaCount (0 allowed)."""
    low, high = _replica_bounds(isvc, 0, component)
    spec_part = isvc["spec"][component]
    name = f"{isvc['metadata']['name']}-{component}"
    metrics = (spec_part.get("autoScaling") or {}).get("metrics") or [
        {"type": "Resource", "resource": {"name": spec_part.get("scaleMetric", "cpu"), "target": {
            "type": "Utilization", "averageUtilization": int(spec_part.get("scaleTarget", DEFAULT_CPU_UTILIZATION))}}}]
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": ns(isvc), "labels": _component_labels(isvc, component)},
            "spec": {"scaleTargetRef": {"name": name}, "minReplicaCount": low,
                     "maxReplicaCount": max(high, 1), "triggers": [_keda_trigger(copy.deepcopy(m)) for m in metrics]}}
