"""Every manifest in the repo validates, and the Flux install hangs together as a real cluster needs."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lab_helpers import paths
from lab_helpers.manifests.loading import is_cluster_scoped, load_documents
from lab_helpers.manifests.validation import validate_documents

MANIFESTS = paths.manifests_dir()
FLUX = MANIFESTS / "flux"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
KSERVE_CHARTS = ("kserve-crd", "kserve-resources", "kserve-runtime-configs")


def placeholder_values(path: Path) -> dict[str, str]:
    """A plausible value for each ${VAR} in the file: a URI for *_URI, a count for *_SECONDS, *_THRESHOLD and
    *_WEIGHT, a Go duration for *_TIMEOUT and *_INTERVAL, an image for *_IMAGE, a JSON body for *_BODY, a DNS
    name otherwise."""
    by_suffix = {"_URI": "s3://lab-models/placeholder/1", "_SECONDS": "30", "_TIMEOUT": "60s", "_THRESHOLD": "2",
                 "_WEIGHT": "25", "_INTERVAL": "10s", "_SCHEDULE": "*/15 * * * *", "_WINDOW": "15m", "_IMAGE": "serving-lab/runtime:0.1",
                 "_BODY": '{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}'}
    names = set(PLACEHOLDER.findall(path.read_text()))
    return {name: next((value for suffix, value in by_suffix.items() if name.endswith(suffix)), "lab")
            for name in names}


def manifest_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.rglob("*") if p.suffix in (".yaml", ".yml"))


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.relative_to(MANIFESTS).as_posix())
def test_manifest_validates_against_the_upstream_schemas(path: Path):
    docs = load_documents(path, variables=placeholder_values(path), namespace="lab")
    assert docs, f"{path} holds no documents"
    validate_documents(docs)


def flux_objects() -> list[dict[str, Any]]:
    return [doc.obj for doc in load_documents(FLUX)]


def by_kind(kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(obj["metadata"]["namespace"], obj["metadata"]["name"]): obj
            for obj in flux_objects() if obj["kind"] == kind}


def test_flux_files_are_numbered_in_apply_order_namespaces_first():
    names = [p.name for p in sorted(FLUX.glob("*.yaml"))]
    assert names and all(re.match(r"\d\d-", name) for name in names)
    kinds = [obj["kind"] for obj in flux_objects()]
    last_namespace = max(i for i, kind in enumerate(kinds) if kind == "Namespace")
    assert all(kind == "Namespace" for kind in kinds[:last_namespace + 1])


def test_every_namespaced_flux_object_names_an_existing_namespace():
    created = {obj["metadata"]["name"] for obj in flux_objects() if obj["kind"] == "Namespace"}
    for obj in flux_objects():
        if not is_cluster_scoped(obj["kind"]):
            # flux-system belongs to Flux itself (created by `flux install`), never to the lab
            assert obj["metadata"].get("namespace") in created | {"flux-system"}, obj["metadata"]


def test_sources_live_in_flux_system_and_pin_kserve_v0_20_0():
    oci = by_kind("OCIRepository")
    assert set(oci) == {("flux-system", chart) for chart in KSERVE_CHARTS}
    for (_, chart), repo in oci.items():
        assert repo["spec"]["url"] == f"oci://ghcr.io/kserve/charts/{chart}"
        assert repo["spec"]["ref"] == {"tag": "v0.20.0"}
        assert repo["spec"]["layerSelector"] == {
            "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "operation": "copy"}
    assert by_kind("HelmRepository")[("flux-system", "jetstack")]["spec"]["url"] == "https://charts.jetstack.io"


def test_every_release_points_at_a_defined_source():
    sources = {(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
               for obj in flux_objects() if obj["kind"] in ("OCIRepository", "HelmRepository")}
    for (namespace, name), release in by_kind("HelmRelease").items():
        spec = release["spec"]
        ref = spec["chartRef"] if "chartRef" in spec else spec["chart"]["spec"]["sourceRef"]
        assert ("chartRef" in spec) != ("chart" in spec), f"{name}: exactly one of chart and chartRef"
        assert (ref["kind"], ref.get("namespace", namespace), ref["name"]) in sources, name


def test_releases_install_in_the_kserve_dependency_order():
    releases = by_kind("HelmRelease")
    edges = {}
    for (namespace, name), release in releases.items():
        for dependency in release["spec"].get("dependsOn", []):
            target = (dependency.get("namespace", namespace), dependency["name"])
            assert target in releases, f"{name} depends on undefined {target}"
            edges[(namespace, name)] = target
    chain = [("kserve", "kserve-runtime-configs")]
    while chain[-1] in edges:
        chain.append(edges[chain[-1]])
    assert [name for _, name in reversed(chain)] == ["cert-manager", *KSERVE_CHARTS]
    assert len(edges) == len(releases) - 1


def test_release_values_avoid_the_documented_gotchas():
    releases = by_kind("HelmRelease")
    resources = releases[("kserve", "kserve-resources")]["spec"]["values"]
    assert resources["kserve"]["controller"]["deploymentMode"] == "Standard"
    runtimes = releases[("kserve", "kserve-runtime-configs")]["spec"]["values"]
    assert runtimes["kserve"]["servingruntime"]["enabled"] is True
    cert_manager = releases[("cert-manager", "cert-manager")]["spec"]["values"]
    assert cert_manager["crds"]["enabled"] is True
    for release in releases.values():
        assert release["spec"]["install"]["remediation"]["retries"] > 0
        assert release["spec"]["upgrade"]["remediation"]["retries"] > 0


@pytest.mark.parametrize("file, name, protocol, model_format, storage_variable", [
    ("iris-inferenceservice.yaml", "iris", "v2", "mlflow", "IRIS_STORAGE_URI"),
    ("iris-sklearn-v1.yaml", "iris-v1", "v1", "sklearn", "IRIS_SKLEARN_STORAGE_URI"),
])
def test_iris_inference_services(file, name, protocol, model_format, storage_variable):
    doc, = load_documents(MANIFESTS / "serving" / file,
                          variables={"NAMESPACE": "lab-ns", "SERVICE_ACCOUNT": "default", storage_variable: "s3://models/iris"})
    isvc = doc.obj
    model = isvc["spec"]["predictor"]["model"]
    assert (isvc["metadata"]["name"], isvc["metadata"]["namespace"]) == (name, "lab-ns")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert (model["protocolVersion"], model["modelFormat"]["name"]) == (protocol, model_format)
    assert model["storageUri"] == "s3://models/iris"
    assert set(model["resources"]) == {"requests", "limits"}
