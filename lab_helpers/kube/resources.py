"""Kind -> REST resource table for every kind the lab applies, reads or checks on a cluster.

A fixed table instead of API discovery: the manifests are written against these exact API
versions, a missing CRD shows up as a clear 404 on first use (and in the doctor) instead of a
discovery failure, and no discovery round-trips or cache files are needed.
Versions of custom kinds are the storage versions of the upstream CRDs, whose schemas are packaged
in ``lab_helpers/schemas/crds`` (a unit test keeps the two in step).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from urllib.parse import quote

from ..errors import LabError


BUILTIN_GROUPS = frozenset({"", "apps", "batch", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io",
                            "apiextensions.k8s.io"})


@dataclass(frozen=True)
class ResourceType:
    kind: str
    group: str  # "" for the core API group
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``plural.group`` as RBAC and ``kubectl auth can-i`` spell it (``pods`` for core)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def is_custom(self) -> bool:
        """Served by a CustomResourceDefinition (installed with its controller), not built in."""
        return self.group not in BUILTIN_GROUPS

    @property
    def crd_name(self) -> str:
        """Name of the CustomResourceDefinition that serves this kind."""
        return f"{self.plural}.{self.group}"

    def with_api_version(self, api_version: str) -> ResourceType:
        """The same kind at the version a document asks for; raises ValueError on a group mismatch."""
        group, _, version = api_version.rpartition("/")
        if group != self.group or not version:
            expected = f"{self.group}/<version>" if self.group else "<version> (core group, e.g. v1)"
            raise ValueError(f"apiVersion {api_version!r} is not in the API group of {self.kind}: expected {expected}")
        return replace(self, version=version)

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """REST path; `namespace` is ignored for cluster-scoped kinds and required for namespaced ones."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is required")
            prefix += f"/namespaces/{quote(namespace, safe='')}"
        path = f"{prefix}/{self.plural}"
        if name:
            path += f"/{quote(name, safe='')}"
            if subresource:
                path += f"/{subresource}"
        return path


def _table(*rows: tuple[str, str, str, str, bool]) -> dict[str, ResourceType]:
    return {kind: ResourceType(kind, group, version, plural, namespaced)
            for kind, group, version, plural, namespaced in rows}


KINDS: dict[str, ResourceType] = _table(
    # Core and built-in groups
    ("Namespace", "", "v1", "namespaces", False),
    ("Pod", "", "v1", "pods", True),
    ("Service", "", "v1", "services", True),
    ("Endpoints", "", "v1", "endpoints", True),
    ("ServiceAccount", "", "v1", "serviceaccounts", True),
    ("Secret", "", "v1", "secrets", True),
    ("ConfigMap", "", "v1", "configmaps", True),
    ("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", True),
    ("Event", "", "v1", "events", True),
    ("Deployment", "apps", "v1", "deployments", True),
    ("ReplicaSet", "apps", "v1", "replicasets", True),
    ("StatefulSet", "apps", "v1", "statefulsets", True),
    ("DaemonSet", "apps", "v1", "daemonsets", True),
    ("Job", "batch", "v1", "jobs", True),
    ("CronJob", "batch", "v1", "cronjobs", True),
    ("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", True),
    ("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", True),
    ("Ingress", "networking.k8s.io", "v1", "ingresses", True),
    ("Role", "rbac.authorization.k8s.io", "v1", "roles", True),
    ("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", True),
    ("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", False),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    ("CustomResourceDefinition", "apiextensions.k8s.io", "v1", "customresourcedefinitions", False),
    # Gateway API (KServe Standard-mode canary, Flagger gatewayapi provider)
    ("GatewayClass", "gateway.networking.k8s.io", "v1", "gatewayclasses", False),
    ("Gateway", "gateway.networking.k8s.io", "v1", "gateways", True),
    ("HTTPRoute", "gateway.networking.k8s.io", "v1", "httproutes", True),
    ("ReferenceGrant", "gateway.networking.k8s.io", "v1beta1", "referencegrants", True),
    # KServe
    ("InferenceService", "serving.kserve.io", "v1beta1", "inferenceservices", True),
    ("ServingRuntime", "serving.kserve.io", "v1alpha1", "servingruntimes", True),
    ("ClusterServingRuntime", "serving.kserve.io", "v1alpha1", "clusterservingruntimes", False),
    ("InferenceGraph", "serving.kserve.io", "v1alpha1", "inferencegraphs", True),
    # Flux
    ("HelmRepository", "source.toolkit.fluxcd.io", "v1", "helmrepositories", True),
    ("OCIRepository", "source.toolkit.fluxcd.io", "v1", "ocirepositories", True),
    ("HelmChart", "source.toolkit.fluxcd.io", "v1", "helmcharts", True),
    ("HelmRelease", "helm.toolkit.fluxcd.io", "v2", "helmreleases", True),
    ("Kustomization", "kustomize.toolkit.fluxcd.io", "v1", "kustomizations", True),
    # KEDA and its HTTP add-on
    ("ScaledObject", "keda.sh", "v1alpha1", "scaledobjects", True),
    ("ScaledJob", "keda.sh", "v1alpha1", "scaledjobs", True),
    ("TriggerAuthentication", "keda.sh", "v1alpha1", "triggerauthentications", True),
    ("ClusterTriggerAuthentication", "keda.sh", "v1alpha1", "clustertriggerauthentications", False),
    ("HTTPScaledObject", "http.keda.sh", "v1alpha1", "httpscaledobjects", True),
    ("InterceptorRoute", "http.keda.sh", "v1beta1", "interceptorroutes", True),
    # Flagger
    ("Canary", "flagger.app", "v1beta1", "canaries", True),
    ("MetricTemplate", "flagger.app", "v1beta1", "metrictemplates", True),
    ("AlertProvider", "flagger.app", "v1beta1", "alertproviders", True),
    # Prometheus Operator
    ("ServiceMonitor", "monitoring.coreos.com", "v1", "servicemonitors", True),
    ("PodMonitor", "monitoring.coreos.com", "v1", "podmonitors", True),
    ("PrometheusRule", "monitoring.coreos.com", "v1", "prometheusrules", True),
    # Cilium
    ("CiliumNetworkPolicy", "cilium.io", "v2", "ciliumnetworkpolicies", True),
    ("CiliumClusterwideNetworkPolicy", "cilium.io", "v2", "ciliumclusterwidenetworkpolicies", False),
)


def lookup(kind: str) -> ResourceType:
    """The resource for `kind`; an unknown kind raises LabError naming close matches."""
    try:
        return KINDS[kind]
    except KeyError:
        close = difflib.get_close_matches(kind, KINDS, n=3, cutoff=0.6)
        by_case = [k for k in KINDS if k.lower() == kind.lower()]
        hint = f"did you mean {' or '.join(by_case or close)}?" if by_case or close else \
            f"the lab knows: {', '.join(sorted(KINDS))}"
        raise LabError(f"unknown kind {kind!r}: {hint}") from None
