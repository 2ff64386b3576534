"""The local Flux stand-in: dependsOn order, the runtime-configs flag, charts it does not know."""
import asyncio

import pytest

from lab_helpers.local.controllers.base import Context, is_true
from lab_helpers.local.controllers.flux import HelmReleaseController, SourceController
from lab_helpers.local.store import Store


def oci(name):
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": name, "namespace": "flux-system"},
            "spec": {"url": f"oci://ghcr.io/kserve/charts/{name}", "ref": {"tag": "v0.20.0"}}}


def release(name, depends=(), values=None):
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": "kserve"},
            "spec": {"chartRef": {"kind": "OCIRepository", "name": name, "namespace": "flux-system"},
                     "dependsOn": [{"name": d} for d in depends], "values": values or {}}}


@pytest.fixture
def flux(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    ctx = Context(store, tmp_path)
    controllers = [SourceController(ctx), HelmReleaseController(ctx)]

    def converge(passes=6):
        for _ in range(passes):
            for controller in controllers:
                for kind in controller.kinds:
                    for obj in store.list(kind):
                        asyncio.run(controller.reconcile(obj))
    return store, converge


def ready(store, name):
    return is_true(store.get("HelmRelease", "kserve", name))


def test_releases_wait_for_their_dependencies(flux):
    store, converge = flux
    for name in ("kserve-crd", "kserve-resources"):
        store.apply(oci(name))
    store.apply(release("kserve-resources", depends=["kserve-crd"]))
    converge()
    status = store.get("HelmRelease", "kserve", "kserve-resources")["status"]["conditions"][0]
    assert (status["status"], status["reason"]) == ("False", "DependencyNotReady")
    assert "kserve/kserve-crd" in status["message"]
    store.apply(release("kserve-crd"))
    converge()
    assert ready(store, "kserve-crd") and ready(store, "kserve-resources")
    assert store.find("CustomResourceDefinition", "", "inferenceservices.serving.kserve.io") is not None


@pytest.mark.parametrize("enabled, expected", [(False, 0), (True, 5)])
def test_runtime_configs_install_runtimes_only_when_enabled(flux, enabled, expected):
    store, converge = flux
    for name in ("kserve-crd", "kserve-runtime-configs"):
        store.apply(oci(name))
    store.apply(release("kserve-crd"))
    store.apply(release("kserve-runtime-configs", depends=["kserve-crd"],
                        values={"kserve": {"servingruntime": {"enabled": enabled}}}))
    converge()
    assert ready(store, "kserve-runtime-configs")
    assert len(store.list("ClusterServingRuntime")) == expected  # off by default: no runtimes


def test_unknown_chart_fails_with_the_catalogue_named(flux):
    store, converge = flux
    store.apply(oci("mystery-chart"))
    store.apply(release("mystery-chart"))
    converge()
    condition = store.get("HelmRelease", "kserve", "mystery-chart")["status"]["conditions"][0]
    assert condition["reason"] == "InstallFailed" and "kserve-crd" in condition["message"]
