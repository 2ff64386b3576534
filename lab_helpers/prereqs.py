"""`lab.require(...)`: create, idempotently, what earlier notebooks would have, so any notebook runs alone.

Each step is named after the notebook that teaches it; requiring a step requires its dependencies.
Steps only apply the same manifests the notebooks apply, so state is the same either way. A step
needs only the few verbs `Target` names, so this module does not depend on the API that calls it.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from .errors import LabError, TargetUnavailable
from .paths import manifests_dir

IRIS_MANIFEST = manifests_dir() / "serving" / "iris-inferenceservice.yaml"


class Target(Protocol):
    """What a prerequisite step uses of a target (`lab_helpers.api.Lab` has all of it)."""

    target: str

    def apply(self, source: Any, variables: dict[str, str] | None = None) -> list[dict[str, Any]]: ...

    def wait_ready(self, kind: str, name: str, namespace: str | None = None,
                   timeout: float = 120.0) -> dict[str, Any]: ...

    def model_uri(self, name: str, alias: str | None = None, version: int | None = None,
                  flavor: str = "mlflow") -> str: ...

    def tracking_uri(self) -> str: ...

    def list(self, kind: str, namespace: str | None = None,
             labels: dict[str, str] | None = None) -> list[dict[str, Any]]: ...


def _registry(lab: Target) -> None:
    from .models.registry import register_lab_models  # imports mlflow (seconds): only when a step needs it

    register_lab_models(lab.tracking_uri())


def _kserve(lab: Target) -> None:
    lab.apply(manifests_dir() / "flux")
    for release in ("cert-manager", "kserve-crd", "kserve-resources", "kserve-runtime-configs"):
        lab.wait_ready("HelmRelease", release, namespace="cert-manager" if release == "cert-manager" else "kserve",
                       timeout=600)


def _iris(lab: Target) -> None:
    lab.apply(IRIS_MANIFEST, {"IRIS_STORAGE_URI": lab.model_uri("iris", alias="champion")})
    lab.wait_ready("InferenceService", "iris", timeout=300)


def _monitoring(lab: Target) -> None:
    lab.apply(manifests_dir() / "platform" / "kube-prometheus-stack.yaml")
    lab.wait_ready("HelmRelease", "kube-prometheus-stack", namespace="monitoring", timeout=600)
    lab.apply(manifests_dir() / "monitoring")


def _cilium(lab: Target) -> None:
    """The local target installs its Cilium agent; a cluster's Cilium is its network plugin, only checked here."""
    if lab.target == "local":
        lab.apply(manifests_dir() / "platform" / "cilium.yaml")
        lab.wait_ready("HelmRelease", "cilium", namespace="kube-system", timeout=600)
        return
    try:
        lab.list("CiliumNetworkPolicy")
    except LabError as exc:
        raise TargetUnavailable(f"this cluster does not serve CiliumNetworkPolicy ({exc}): Cilium is the network "
                                "plugin, chosen when the cluster is created; see docs/cluster.md") from None


STEPS: dict[str, tuple[tuple[str, ...], Callable[[Target], None]]] = {
    "registry": ((), _registry),
    "kserve": ((), _kserve),
    "iris": (("registry", "kserve"), _iris),
    "monitoring": (("iris",), _monitoring),
    "cilium": ((), _cilium),
}


def require(lab: Target, *names: str) -> None:
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
