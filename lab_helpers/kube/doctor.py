"""``python -m lab_helpers doctor --target kubernetes``: does this cluster have what the series needs?

Each check says ok, missing or unknown (could not tell, e.g. RBAC), and for every missing piece
what installs it. APIs are checked through discovery (``/apis/<group>/<version>``), which every
authenticated user may read, so a learner without cluster-admin still gets a useful answer.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable, TextIO

from ..errors import TargetUnavailable
from ..paths import manifests_dir
from .transport import ApiFailure, KubeApi, load_api_client
from .resources import KINDS

OK, MISSING, UNKNOWN = "ok", "missing", "unknown"
KSERVE_NAMESPACE = "kserve"
KSERVE_CONTROLLER = "kserve-controller-manager"
KSERVE_RUNTIMES = ("kserve-mlserver", "kserve-sklearnserver", "kserve-tritonserver")


@dataclass(frozen=True)
class Finding:
    item: str
    state: str
    detail: str = ""


@dataclass(frozen=True)
class Component:
    name: str
    kinds: tuple[str, ...]  # kinds whose API must be served
    install: str  # what to do when something of this component is missing


def _chart_hint(platform_file: str, chart: str, repo: str, note: str = "") -> str:
    path = manifests_dir() / "platform" / f"{platform_file}.yaml"
    if path.is_file():
        return f"apply manifests/platform/{platform_file}.yaml (Flux HelmRelease of chart {chart}){note}"
    return (f"install Helm chart {chart} from {repo} (with Flux: a HelmRepository for that URL and a "
            f"HelmRelease of the chart; this checkout has no manifests/platform/{platform_file}.yaml yet){note}")


KSERVE_INSTALL = ("apply manifests/flux/ (e.g. lab.apply('manifests/flux')): Flux then installs the charts "
                  "kserve-crd -> kserve-resources -> kserve-runtime-configs into namespace kserve "
                  "(needs Flux and cert-manager); `flux get helmreleases -A` shows their progress")


def components() -> list[Component]:
    """What the series needs, in install order."""
    return [
        Component("Flux", ("HelmRelease", "OCIRepository"),
                  "install Flux (`flux install`, or `flux bootstrap` for a GitOps repository); "
                  "manifests/flux/ needs its source-controller and helm-controller"),
        Component("KServe", ("InferenceService", "ServingRuntime", "ClusterServingRuntime"), KSERVE_INSTALL),
        Component("KEDA", ("ScaledObject", "TriggerAuthentication"),
                  _chart_hint("keda", "kedacore/keda", "https://kedacore.github.io/charts")),
        Component("KEDA HTTP add-on", ("InterceptorRoute", "HTTPScaledObject"),
                  _chart_hint("keda", "kedacore/keda-add-ons-http", "https://kedacore.github.io/charts",
                              " (after KEDA)")),
        Component("Flagger", ("Canary", "MetricTemplate"),
                  _chart_hint("flagger", "flagger/flagger", "https://flagger.app",
                              " with meshProvider matching your ingress (e.g. gatewayapi:v1)")),
        Component("Prometheus Operator", ("ServiceMonitor", "PodMonitor", "PrometheusRule"),
                  _chart_hint("kube-prometheus-stack", "prometheus-community/kube-prometheus-stack",
                              "https://prometheus-community.github.io/helm-charts",
                              " (or prometheus-operator-crds for the CRDs alone)")),
        Component("Cilium", ("CiliumNetworkPolicy",),
                  _chart_hint("cilium", "cilium/cilium", "https://helm.cilium.io/",
                              "; Cilium is the cluster's network plugin, normally chosen when the cluster "
                              "is created")),
    ]


def _api_item(kind: str) -> str:
    rtype = KINDS[kind]
    return f"{kind} API ({rtype.api_version}, CRD {rtype.crd_name})"


class _Probe:
    """The checks against a reachable cluster; each returns a Finding, whatever the server answers."""

    def __init__(self, api: KubeApi):
        self.api = api
        self._served: dict[str, set[str] | ApiFailure] = {}

    @staticmethod
    def _failed(item: str, failure: ApiFailure, missing_detail: str = "") -> Finding:
        if failure.code == 404:
            return Finding(item, MISSING, missing_detail)
        if failure.code == 403:
            return Finding(item, UNKNOWN, f"RBAC does not let you read it ({failure.message})")
        return Finding(item, UNKNOWN, f"the API server answered {failure}")

    def api_served(self, kind: str) -> Finding:
        rtype, item = KINDS[kind], _api_item(kind)
        if rtype.api_version not in self._served:
            try:
                listing = self.api.request("GET", f"/apis/{rtype.api_version}", timeout=10.0)
                self._served[rtype.api_version] = {r.get("name") for r in listing.get("resources") or []}
            except ApiFailure as failure:
                self._served[rtype.api_version] = failure
        served = self._served[rtype.api_version]
        if isinstance(served, ApiFailure):
            return self._failed(item, served, f"the cluster does not serve {rtype.api_version}")
        if rtype.plural not in served:
            return Finding(item, MISSING, f"{rtype.api_version} is served but without {rtype.plural}")
        return Finding(item, OK)

    def kserve_controller(self, item: str) -> Finding:
        try:
            deployment = self.api.request("GET", KINDS["Deployment"].path(KSERVE_NAMESPACE, KSERVE_CONTROLLER))
        except ApiFailure as failure:
            return self._failed(item, failure)
        available = (deployment.get("status") or {}).get("availableReplicas") or 0
        if not available:
            return Finding(item, MISSING, "exists but has no available replica (`kubectl -n "
                                          f"{KSERVE_NAMESPACE} describe deployment {KSERVE_CONTROLLER}`)")
        return Finding(item, OK, f"{available} available")

    def cluster_serving_runtime(self, item: str, name: str) -> Finding:
        if self.api_served("ClusterServingRuntime").state != OK:
            return Finding(item, MISSING, "its CRD is missing")
        try:
            runtime = self.api.request("GET", KINDS["ClusterServingRuntime"].path(name=name))
        except ApiFailure as failure:
            return self._failed(item, failure, "comes from chart kserve-runtime-configs with "
                                "kserve.servingruntime.enabled=true (since KServe 0.17 a Helm or Flux install "
                                "has no runtimes otherwise)")
        if (runtime.get("spec") or {}).get("disabled"):
            return Finding(item, MISSING, "exists but spec.disabled is true")
        return Finding(item, OK)

    def namespace(self, item: str, name: str) -> Finding:
        try:
            self.api.request("GET", KINDS["Namespace"].path(name=name))
        except ApiFailure as failure:
            return self._failed(item, failure)
        return Finding(item, OK)


Check = tuple[str, Callable[[_Probe], Finding]]


def _checks(component: Component) -> list[Check]:
    """(item, how to check it) for one component; items are listed even when nothing can be checked."""
    checks: list[Check] = [(_api_item(kind), lambda probe, kind=kind: probe.api_served(kind))
                           for kind in component.kinds]
    if component.name == "KServe":
        item = f"controller Deployment {KSERVE_NAMESPACE}/{KSERVE_CONTROLLER}"
        checks.append((item, lambda probe, item=item: probe.kserve_controller(item)))
        checks += [(f"ClusterServingRuntime {name}",
                    lambda probe, name=name: probe.cluster_serving_runtime(f"ClusterServingRuntime {name}", name))
                   for name in KSERVE_RUNTIMES]
    return checks


def _print_component(out: TextIO, name: str, findings: list[Finding], install: str) -> None:
    print(name, file=out)
    for finding in findings:
        detail = f": {finding.detail}" if finding.detail else ""
        print(f"  {finding.state:<8} {finding.item}{detail}", file=out)
    if any(f.state == MISSING for f in findings):
        print(f"  -> to install: {install}", file=out)


def run_doctor(context: str | None = None, kubeconfig: str | None = None, out: TextIO = sys.stdout, *,
               namespace: str = "lab") -> int:
    """Print what the cluster has and lacks for the series; exit code 0 all ok, 1 something missing
    or unknown, 2 cluster unreachable (then every item is listed as unknown)."""
    lab_component = Component("Lab", (), f"`kubectl create namespace {namespace}`")
    namespace_item = f"namespace {namespace} (where the notebooks work)"
    plan: list[tuple[Component, list[Check]]] = [
        (lab_component, [(namespace_item, lambda probe: probe.namespace(namespace_item, namespace))])]
    plan += [(component, _checks(component)) for component in components()]
    try:
        api_client, label = load_api_client(context, kubeconfig)
        api = KubeApi(api_client, label)
        version = api.version()
    except TargetUnavailable as exc:
        print(f"Kubernetes API: UNREACHABLE: {exc}", file=out)
        for component, checks in plan:
            _print_component(out, component.name, [Finding(item, UNKNOWN) for item, _ in checks], "")
        print(f"Summary: cluster unreachable, all {sum(len(c) for _, c in plan)} checks unknown; "
              f"fix the connection first (see above)", file=out)
        return 2
    print(f"Kubernetes API: ok: context {label!r} at {api_client.configuration.host}, "
          f"server {version.get('gitVersion', '?')}", file=out)
    probe = _Probe(api)
    everything: list[Finding] = []
    for component, checks in plan:
        findings = [check(probe) for _, check in checks]
        _print_component(out, component.name, findings, component.install)
        everything += findings
    counts = {state: sum(f.state == state for f in everything) for state in (OK, MISSING, UNKNOWN)}
    print(f"Summary: {counts[OK]} ok, {counts[MISSING]} missing, {counts[UNKNOWN]} unknown", file=out)
    return 0 if counts[OK] == len(everything) else 1
