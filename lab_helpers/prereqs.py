"""`lab.require(...)`: create, idempotently, what earlier notebooks would have, so any notebook runs alone.

Each step is named after the notebook that teaches it; requiring a step requires its dependencies.
Steps only apply the same manifests the notebooks apply, so state is the same either way.
"""
from __future__ import annotations

import os
from typing import Callable

from .api import Lab
from .paths import manifests_dir

# Where the lab's model artifacts are readable by the serving runtime, when MLflow's own URIs are not.
REWRITE_ENV = "LAB_ARTIFACT_REWRITE"  # "mlflow-artifacts:/=s3://mlflow/" (comma-separated pairs)
IRIS_MANIFEST = manifests_dir() / "serving" / "iris-inferenceservice.yaml"


def tracking_uri(lab: Lab) -> str:
    """MLflow for this target: the local target's own server, or the cluster's MLflow (MLFLOW_TRACKING_URI)."""
    if lab.target == "local":
        from .mlflow_server import ensure_mlflow_server

        return ensure_mlflow_server()
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        from .errors import TargetUnavailable

        raise TargetUnavailable("set MLFLOW_TRACKING_URI to your cluster's MLflow (e.g. after "
                                "`kubectl port-forward svc/mlflow 5000` use http://127.0.0.1:5000); see docs/cluster.md")
    return uri


def artifact_rewrite() -> dict[str, str]:
    pairs = [p for p in os.environ.get(REWRITE_ENV, "").split(",") if p.strip()]
    return dict(p.split("=", 1) for p in pairs)


def model_uri(lab: Lab, name: str, alias: str | None = None, version: int | None = None,
              flavor: str = "mlflow") -> str:
    """storageUri of a registered model for this target (registering the lab's models if needed)."""
    from . import registry

    uri = tracking_uri(lab)
    registry.register_lab_models(uri)
    return registry.storage_uri(uri, name, version=version, alias=alias, flavor=flavor, rewrite=artifact_rewrite())


def _registry(lab: Lab) -> None:
    from .registry import register_lab_models

    register_lab_models(tracking_uri(lab))


def _kserve(lab: Lab) -> None:
    lab.apply(manifests_dir() / "flux")
    for release in ("cert-manager", "kserve-crd", "kserve-resources", "kserve-runtime-configs"):
        lab.wait_ready("HelmRelease", release, namespace="cert-manager" if release == "cert-manager" else "kserve",
                       timeout=600)


def _iris(lab: Lab) -> None:
    lab.apply(IRIS_MANIFEST, {"IRIS_STORAGE_URI": model_uri(lab, "iris", alias="champion")})
    lab.wait_ready("InferenceService", "iris", timeout=300)


def _monitoring(lab: Lab) -> None:
    lab.apply(manifests_dir() / "platform" / "kube-prometheus-stack.yaml")
    lab.wait_ready("HelmRelease", "kube-prometheus-stack", namespace="monitoring", timeout=600)
    lab.apply(manifests_dir() / "monitoring")


STEPS: dict[str, tuple[tuple[str, ...], Callable[[Lab], None]]] = {
    "registry": ((), _registry),
    "kserve": ((), _kserve),
    "iris": (("registry", "kserve"), _iris),
    "monitoring": (("iris",), _monitoring),
}


def require(lab: Lab, *names: str) -> None:
    done: set[str] = set()

    def visit(name: str) -> None:
        if name not in STEPS:
            raise ValueError(f"unknown prerequisite {name!r}: choose from {', '.join(STEPS)}")
        if name in done:
            return
        deps, step = STEPS[name]
        for dep in deps:
            visit(dep)
        step(lab)
        done.add(name)

    for name in names:
        visit(name)
