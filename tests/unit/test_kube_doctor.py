"""The cluster doctor against kmock: an empty cluster, a partial install, a full one, none at all."""
from __future__ import annotations

import io
import re
from pathlib import Path

from kube_fixtures import MockCluster, empty_cluster, running_mock_cluster, write_kubeconfig  # noqa: F401

from lab_helpers.kube.doctor import KSERVE_RUNTIMES, components, run_doctor
from lab_helpers.kube.resources import KINDS


def _doctor(kubeconfig: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = run_doctor(kubeconfig=str(kubeconfig), out=out)
    return code, out.getvalue()


def _states(report: str) -> dict[str, str]:
    """item -> state, from the report lines ``  <state> <item>[: detail]``."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^  (ok|missing|unknown) +(.+?)(?::|$)", report, re.M)}


def test_empty_cluster_lists_every_missing_piece_and_what_installs_it(empty_cluster: MockCluster) -> None:
    code, report = _doctor(empty_cluster.kubeconfig)
    assert code == 1
    states = _states(report)
    crd_kinds = [kind for component in components() for kind in component.kinds]
    assert len(crd_kinds) == 15
    for kind in crd_kinds:
        assert states[f"{kind} API ({KINDS[kind].api_version}, CRD {KINDS[kind].crd_name})"] == "missing", kind
    assert states["controller Deployment kserve/kserve-controller-manager"] == "missing"
    for runtime in KSERVE_RUNTIMES:
        assert f"missing  ClusterServingRuntime {runtime}: its CRD is missing" in report
    assert states["namespace lab (where the notebooks work)"] == "missing"
    assert set(states.values()) == {"missing"}
    for hint in ("`flux install`", "apply manifests/flux/",
                 "apply manifests/platform/keda.yaml (Flux HelmRelease of chart kedacore/keda)",
                 "apply manifests/platform/keda.yaml (Flux HelmRelease of chart kedacore/keda-add-ons-http) (after KEDA)",
                 "apply manifests/platform/flagger.yaml (Flux HelmRelease of chart flagger/flagger) with meshProvider "
                 "matching your ingress (e.g. gatewayapi:v1)",
                 "apply manifests/platform/kube-prometheus-stack.yaml (Flux HelmRelease of chart "
                 "prometheus-community/kube-prometheus-stack)",
                 "apply manifests/platform/cilium.yaml (Flux HelmRelease of chart cilium/cilium); Cilium is the "
                 "cluster's network plugin", "`kubectl create namespace lab`"):
        assert hint in report, hint
    assert report.count("-> to install:") == 8
    assert "Summary: 0 ok, 20 missing, 0 unknown" in report


def _install_kserve(cluster: MockCluster, runtimes: tuple[str, ...], disabled: str | None = None) -> None:
    cluster.put("Namespace", {"metadata": {"name": "lab"}})
    cluster.put("Deployment", {"metadata": {"name": "kserve-controller-manager", "namespace": "kserve"},
                               "status": {"availableReplicas": 1}})
    for name in runtimes:
        cluster.put("ClusterServingRuntime", {"metadata": {"name": name}, "spec": {"disabled": name == disabled}})


def test_kserve_without_runtime_configs_points_at_the_runtime_chart(tmp_path: Path) -> None:
    kserve = ("InferenceService", "ServingRuntime", "ClusterServingRuntime", "Deployment", "Namespace")
    with running_mock_cluster(tmp_path, kserve) as cluster:
        _install_kserve(cluster, ("kserve-sklearnserver", "kserve-mlserver"), disabled="kserve-mlserver")
        code, report = _doctor(cluster.kubeconfig)
    assert code == 1
    kserve_part = report.split("\nKServe\n")[1].split("\nKEDA\n")[0]
    assert "ok       InferenceService API" in kserve_part
    assert "ok       controller Deployment kserve/kserve-controller-manager: 1 available" in kserve_part
    assert "ok       ClusterServingRuntime kserve-sklearnserver" in kserve_part
    assert "missing  ClusterServingRuntime kserve-mlserver: exists but spec.disabled is true" in kserve_part
    assert re.search(r"missing  ClusterServingRuntime kserve-tritonserver: comes from chart kserve-runtime-configs "
                     r"with kserve.servingruntime.enabled=true", kserve_part)
    assert "ok       namespace lab" in report


def test_a_complete_cluster_passes(tmp_path: Path) -> None:
    with running_mock_cluster(tmp_path, KINDS) as cluster:
        _install_kserve(cluster, KSERVE_RUNTIMES)
        code, report = _doctor(cluster.kubeconfig)
    assert (code, set(_states(report).values())) == (0, {"ok"})
    assert "Summary: 20 ok, 0 missing, 0 unknown" in report
    assert "-> to install" not in report


def test_rbac_denial_is_unknown_not_missing(tmp_path: Path) -> None:
    with running_mock_cluster(tmp_path, KINDS) as cluster:
        _install_kserve(cluster, KSERVE_RUNTIMES)
        cluster.server["get /apis/serving.kserve.io/v1alpha1/clusterservingruntimes/kserve-mlserver"] << 403 << {
            "kind": "Status", "code": 403, "reason": "Forbidden", "message": "clusterservingruntimes is forbidden"}
        code, report = _doctor(cluster.kubeconfig)
    assert code == 1
    assert "unknown  ClusterServingRuntime kserve-mlserver: RBAC does not let you read it" in report


def test_unreachable_cluster_lists_every_item_as_unknown(tmp_path: Path) -> None:
    code, report = _doctor(write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1"))
    assert code == 2
    assert report.startswith("Kubernetes API: UNREACHABLE: cannot reach the Kubernetes API of context 'kmock'")
    assert "KUBECONFIG" in report and "kubectl config get-contexts" in report
    states = _states(report)
    assert len(states) == 20 and set(states.values()) == {"unknown"}
