"""The kind table: REST paths, and agreement with the packaged upstream CRDs the manifests are checked against."""
from __future__ import annotations

import pytest

from lab_helpers.errors import LabError
from lab_helpers.kube.resources import KINDS, lookup
from lab_helpers.manifests.schemas import packaged


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


def test_table_matches_every_upstream_crd() -> None:
    crds = packaged.load(packaged.DIRECTORY).by_kind.values()
    assert len(crds) >= 20
    for crd in crds:
        rtype = KINDS[crd.kind]
        assert (rtype.group, rtype.plural, rtype.namespaced) == (crd.group, crd.plural, crd.scope == "Namespaced"), \
            rtype.kind
        assert rtype.version in crd.versions, f"{rtype.kind}: {rtype.version} not in {list(crd.versions)}"
        assert rtype.is_custom and rtype.crd_name == crd.name
