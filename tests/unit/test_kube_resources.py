"""The kind table: REST paths, and agreement with the upstream CRDs the manifests are checked against."""
from __future__ import annotations

import pytest
import yaml

from lab_helpers.errors import LabError
from lab_helpers.kube.resources import KINDS, lookup
from lab_helpers.paths import shared_dir


def test_paths_for_core_custom_and_cluster_scoped_kinds() -> None:
    assert KINDS["Pod"].path("lab", "p-1", "log") == "/api/v1/namespaces/lab/pods/p-1/log"
    assert KINDS["InferenceService"].path("lab") == "/apis/serving.kserve.io/v1beta1/namespaces/lab/inferenceservices"
    assert KINDS["ClusterServingRuntime"].path("ignored", "kserve-mlserver") == \
        "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes/kserve-mlserver"
    with pytest.raises(ValueError, match="Deployment is namespaced"):
        KINDS["Deployment"].path(None, "x")


def test_a_document_version_is_used_within_the_kind_group() -> None:
    assert KINDS["HorizontalPodAutoscaler"].with_api_version("autoscaling/v1").path("lab") == \
        "/apis/autoscaling/v1/namespaces/lab/horizontalpodautoscalers"
    with pytest.raises(ValueError, match=r"expected keda.sh/<version>"):
        KINDS["ScaledObject"].with_api_version("http.keda.sh/v1alpha1")
    with pytest.raises(ValueError, match=r"core group"):
        KINDS["Service"].with_api_version("apps/v1")


def test_lookup_suggests_the_right_spelling() -> None:
    assert lookup("Canary").plural == "canaries"
    with pytest.raises(LabError, match="did you mean HTTPRoute"):
        lookup("HttpRoute")


def _upstream_crds() -> list[dict]:
    shared = shared_dir()
    if shared is None:
        pytest.skip("shared/crds is not laid beside the repo")
    return [doc for path in sorted((shared / "crds").glob("*.yaml"))
            for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader)
            if doc and doc.get("kind") == "CustomResourceDefinition"]


def test_table_matches_every_upstream_crd() -> None:
    crds = _upstream_crds()
    assert len(crds) >= 20
    for crd in crds:
        spec = crd["spec"]
        rtype = KINDS[spec["names"]["kind"]]
        served = [v["name"] for v in spec["versions"] if v.get("served")]
        assert (rtype.group, rtype.plural, rtype.namespaced) == \
            (spec["group"], spec["names"]["plural"], spec["scope"] == "Namespaced"), rtype.kind
        assert rtype.version in served, f"{rtype.kind}: {rtype.version} not in {served}"
        assert rtype.is_custom and rtype.crd_name == crd["metadata"]["name"]
