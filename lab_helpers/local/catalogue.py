"""What the local target's Flux "installs": charts it knows, the CRDs they bring, the runtimes KServe ships.

A real helm-controller pulls the chart and applies its templates; the local stand-in maps each chart
name it knows to the same effect on the object graph (CRDs served, controllers running,
ClusterServingRuntimes created). Data only: the Flux controller interprets it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CRD:
    kind: str
    group: str
    plural: str
    versions: tuple[str, ...]
    namespaced: bool = True

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"


@dataclass(frozen=True)
class Chart:
    crds: tuple[CRD, ...] = ()
    controllers: tuple[str, ...] = ()      # components whose control loops start once installed
    needs_crds_of: tuple[str, ...] = ()    # installing templates for kinds another chart defines
    runtimes: bool = False                 # kserve-runtime-configs: ClusterServingRuntimes behind a value


KSERVE = "serving.kserve.io"
CHARTS: dict[str, Chart] = {
    "cert-manager": Chart(
        crds=(CRD("Certificate", "cert-manager.io", "certificates", ("v1",)),
              CRD("Issuer", "cert-manager.io", "issuers", ("v1",)),
              CRD("ClusterIssuer", "cert-manager.io", "clusterissuers", ("v1",), namespaced=False)),
        controllers=("cert-manager",)),
    "kserve-crd": Chart(crds=(
        CRD("InferenceService", KSERVE, "inferenceservices", ("v1beta1",)),
        CRD("ServingRuntime", KSERVE, "servingruntimes", ("v1alpha1",)),
        CRD("ClusterServingRuntime", KSERVE, "clusterservingruntimes", ("v1alpha1",), namespaced=False),
        CRD("InferenceGraph", KSERVE, "inferencegraphs", ("v1alpha1",)),
        CRD("ClusterStorageContainer", KSERVE, "clusterstoragecontainers", ("v1alpha1",), namespaced=False),
    )),
    "kserve-resources": Chart(controllers=("kserve-controller-manager",), needs_crds_of=("kserve-crd",)),
    "kserve-runtime-configs": Chart(needs_crds_of=("kserve-crd",), runtimes=True),
    "keda": Chart(crds=(
        CRD("ScaledObject", "keda.sh", "scaledobjects", ("v1alpha1",)),
        CRD("ScaledJob", "keda.sh", "scaledjobs", ("v1alpha1",)),
        CRD("TriggerAuthentication", "keda.sh", "triggerauthentications", ("v1alpha1",)),
        CRD("ClusterTriggerAuthentication", "keda.sh", "clustertriggerauthentications", ("v1alpha1",),
            namespaced=False)), controllers=("keda-operator",)),
    "keda-add-ons-http": Chart(crds=(
        CRD("HTTPScaledObject", "http.keda.sh", "httpscaledobjects", ("v1alpha1",)),
        CRD("InterceptorRoute", "http.keda.sh", "interceptorroutes", ("v1beta1",))),
        controllers=("keda-add-ons-http-interceptor",)),
    "flagger": Chart(crds=(
        CRD("Canary", "flagger.app", "canaries", ("v1beta1",)),
        CRD("MetricTemplate", "flagger.app", "metrictemplates", ("v1beta1",)),
        CRD("AlertProvider", "flagger.app", "alertproviders", ("v1beta1",))), controllers=("flagger",)),
    # Flagger's load tester (chart flagger/loadtester): runs the `cmd` of rollout webhooks (lab_helpers/local/loadtester.py).
    "loadtester": Chart(controllers=("flagger-loadtester",)),
    "kube-prometheus-stack": Chart(crds=(
        CRD("ServiceMonitor", "monitoring.coreos.com", "servicemonitors", ("v1",)),
        CRD("PodMonitor", "monitoring.coreos.com", "podmonitors", ("v1",)),
        CRD("PrometheusRule", "monitoring.coreos.com", "prometheusrules", ("v1",))),
        controllers=("prometheus-operator", "prometheus")),
    "cilium": Chart(crds=(CRD("CiliumNetworkPolicy", "cilium.io", "ciliumnetworkpolicies", ("v2",)),),
                    controllers=("cilium-agent",)),
}


def _runtime(name: str, image: str, formats: list[dict[str, Any]], protocols: list[str], args: list[str],
             annotations: dict[str, str], env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{KSERVE}/v1alpha1", "kind": "ClusterServingRuntime",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "Helm",
                                              "helm.sh/chart": "kserve-runtime-configs"}},
        "spec": {
            "annotations": annotations,
            "supportedModelFormats": formats,
            "protocolVersions": protocols,
            "containers": [{"name": "kserve-container", "image": image, "args": args, "env": env or [],
                            "resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                                          "limits": {"cpu": "1", "memory": "2Gi"}}}],
        },
    }


def _fmt(name: str, version: str, priority: int, auto: bool = True) -> dict[str, Any]:
    return {"name": name, "version": version, "autoSelect": auto, "priority": priority}


KSERVE_ARGS = ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"]
PROM_8080 = {"prometheus.kserve.io/port": "8080", "prometheus.kserve.io/path": "/metrics"}

# Five of the ClusterServingRuntimes kserve-runtime-configs v0.20.0 ships; all of them:
# https://github.com/kserve/kserve/blob/v0.20.0/charts/kserve-runtime-configs/files/runtimes/resources.yaml
BUILTIN_RUNTIMES: list[dict[str, Any]] = [
    _runtime("kserve-sklearnserver", "kserve/sklearnserver:v0.20.0", [_fmt("sklearn", "1", 1)], ["v1", "v2"],
             KSERVE_ARGS, PROM_8080),
    _runtime("kserve-xgbserver", "kserve/xgbserver:v0.20.0", [_fmt("xgboost", "2", 1)], ["v1", "v2"],
             KSERVE_ARGS, PROM_8080),
    _runtime("kserve-mlserver", "docker.io/seldonio/mlserver:1.7.1",
             [_fmt("sklearn", "0", 2), _fmt("sklearn", "1", 2), _fmt("xgboost", "1", 2), _fmt("xgboost", "2", 2),
              _fmt("lightgbm", "3", 2), _fmt("lightgbm", "4", 2), _fmt("mlflow", "1", 1), _fmt("mlflow", "2", 1)],
             ["v2"], [], {**PROM_8080, "serving.kserve.io/server-type": "mlserver"},
             env=[{"name": "MLSERVER_MODEL_IMPLEMENTATION", "value": "{{.Labels.modelClass}}"},
                  {"name": "MLSERVER_HTTP_PORT", "value": "8080"}, {"name": "MLSERVER_GRPC_PORT", "value": "9000"},
                  {"name": "MODELS_DIR", "value": "/mnt/models"}]),
    _runtime("kserve-tritonserver", "nvcr.io/nvidia/tritonserver:23.05-py3",
             [_fmt("tensorrt", "8", 1), _fmt("tensorflow", "1", 1), _fmt("tensorflow", "2", 1),
              _fmt("onnx", "1", 1), _fmt("triton", "2", 1), _fmt("pytorch", "1", 1, auto=False)],
             ["v2", "grpc-v2"],
             ["tritonserver", "--model-store=/mnt/models", "--grpc-port=9000", "--http-port=8080",
              "--allow-grpc=true", "--allow-http=true"],
             {"prometheus.kserve.io/port": "8002", "prometheus.kserve.io/path": "/metrics",
              "serving.kserve.io/server-type": "triton"}),
    _runtime("kserve-predictiveserver", "kserve/predictiveserver:v0.20.0",
             [_fmt("sklearn", "1", 3, auto=False), _fmt("xgboost", "2", 3, auto=False),
              _fmt("lightgbm", "4", 3, auto=False)], ["v1", "v2"], KSERVE_ARGS, PROM_8080),
]

# Kinds served before any chart is installed: core Kubernetes and Flux (bootstrapped like `flux install`).
BUILTIN_KINDS: dict[str, tuple[str, bool]] = {
    "Namespace": ("v1", False), "ServiceAccount": ("v1", True), "Secret": ("v1", True),
    "ConfigMap": ("v1", True), "Service": ("v1", True), "Pod": ("v1", True), "Event": ("v1", True),
    "Deployment": ("apps/v1", True), "Job": ("batch/v1", True), "CronJob": ("batch/v1", True),
    "NetworkPolicy": ("networking.k8s.io/v1", True), "Ingress": ("networking.k8s.io/v1", True),
    "HorizontalPodAutoscaler": ("autoscaling/v2", True),
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1", False),
    "HelmRelease": ("helm.toolkit.fluxcd.io/v2", True),
    "HelmRepository": ("source.toolkit.fluxcd.io/v1", True),
    "OCIRepository": ("source.toolkit.fluxcd.io/v1", True),
    "HelmChart": ("source.toolkit.fluxcd.io/v1", True),
    # Gateway API: the local gateway implements it, so its kinds are served from the start (on a cluster
    # they come with the Gateway API CRDs that your gateway implementation installs).
    "GatewayClass": ("gateway.networking.k8s.io/v1", False), "Gateway": ("gateway.networking.k8s.io/v1", True),
    "HTTPRoute": ("gateway.networking.k8s.io/v1", True),
    "ReferenceGrant": ("gateway.networking.k8s.io/v1beta1", True),
}


def crd_object(crd: CRD, chart: str) -> dict[str, Any]:
    """A trimmed CustomResourceDefinition: enough to show what is served (schemas live in the real chart)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": crd.name, "labels": {"helm.sh/chart": chart}},
        "spec": {"group": crd.group, "names": {"kind": crd.kind, "plural": crd.plural},
                 "scope": "Namespaced" if crd.namespaced else "Cluster",
                 "versions": [{"name": v, "served": True, "storage": i == 0} for i, v in enumerate(crd.versions)]},
    }
