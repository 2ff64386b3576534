"""The exit test's faults: each is one edit to the InferenceService's spec; injection redeploys it (kmock)."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from lab_helpers.diagnosis import CAUSES
from lab_helpers.errors import LabError
from lab_helpers.faults import SCENARIOS, normalise, pick_scenario, scenario, wait_for_symptom
from lab_helpers.faults.inject import as_applied
from lab_helpers.faults.scenarios import MISSING_SEGMENT, TOO_LOW_MEMORY, UNREACHABLE_ENDPOINT
from lab_helpers.local.catalogue import BUILTIN_RUNTIMES
from lab_helpers.manifests.loading import load_documents
from lab_helpers.manifests.validation import validate_documents
from lab_helpers.paths import manifests_dir

from kube_fixtures import MockCluster, cluster  # noqa: F401  (cluster is a pytest fixture)

STORAGE = "s3://mlflow/1/abc/artifacts/sklearn"
VARIABLES = {"NAMESPACE": "lab", "WINE_SKLEARN_STORAGE_URI": STORAGE}
INCIDENT = manifests_dir() / "exit-test" / "wine-incident.yaml"


def wine() -> dict[str, Any]:
    return copy.deepcopy(load_documents(INCIDENT, VARIABLES)[0].obj)


def model(isvc: dict[str, Any]) -> dict[str, Any]:
    return isvc["spec"]["predictor"]["model"]


def test_there_is_one_scenario_per_cause_the_diagnosis_names() -> None:
    assert tuple(SCENARIOS) == CAUSES


@pytest.mark.parametrize("name", CAUSES)
def test_each_fault_changes_only_the_predictor_model_and_stays_a_valid_manifest(name: str) -> None:
    before = wine()
    after = SCENARIOS[name].breaks(before, BUILTIN_RUNTIMES)
    assert before == wine(), "the service given is not modified"
    assert model(after) != model(before)
    assert {k: v for k, v in after["spec"]["predictor"].items() if k != "model"} == \
        {k: v for k, v in before["spec"]["predictor"].items() if k != "model"}
    validate_documents(load_documents(after))


def test_the_missing_artifact_is_a_path_under_the_real_one() -> None:
    assert model(SCENARIOS["model-artifact-missing"].breaks(wine(), []))["storageUri"] == \
        f"{STORAGE}/{MISSING_SEGMENT}"


def test_the_unreachable_storage_keeps_the_artifact_path_behind_an_endpoint_nothing_listens_on() -> None:
    broken = SCENARIOS["storage-backend-not-accessible"].breaks(wine(), [])
    assert model(broken)["storageUri"] == f"{UNREACHABLE_ENDPOINT}/mlflow/1/abc/artifacts/sklearn"
    local = wine()
    model(local)["storageUri"] = "file:///srv/mlruns/1/abc/artifacts/sklearn/"
    assert model(SCENARIOS["storage-backend-not-accessible"].breaks(local, []))["storageUri"] == \
        f"{UNREACHABLE_ENDPOINT}/srv/mlruns/1/abc/artifacts/sklearn"


def test_too_low_limits_lower_the_request_with_the_limit() -> None:
    resources = model(SCENARIOS["resource-limits-too-low"].breaks(wine(), []))["resources"]
    assert resources["limits"]["memory"] == resources["requests"]["memory"] == TOO_LOW_MEMORY
    assert resources["limits"]["cpu"] == "1"


def test_the_mismatched_runtime_does_not_support_the_model_format() -> None:
    broken = SCENARIOS["framework-runtime-mismatch"].breaks(wine(), BUILTIN_RUNTIMES)
    runtime = next(r for r in BUILTIN_RUNTIMES if r["metadata"]["name"] == model(broken)["runtime"])
    assert "sklearn" not in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    sklearn_only = [r for r in BUILTIN_RUNTIMES if r["metadata"]["name"] == "kserve-sklearnserver"]
    with pytest.raises(LabError, match="every serving runtime on this target supports 'sklearn'"):
        SCENARIOS["framework-runtime-mismatch"].breaks(wine(), sklearn_only)


def test_a_storage_fault_needs_a_storage_uri() -> None:
    isvc = wine()
    del model(isvc)["storageUri"]
    with pytest.raises(LabError, match="has no spec.predictor.model.storageUri"):
        SCENARIOS["model-artifact-missing"].breaks(isvc, [])


def test_the_seed_picks_the_same_scenario_every_time_and_every_scenario_for_some_seed() -> None:
    assert pick_scenario(13) == pick_scenario(13)
    assert {pick_scenario(seed).name for seed in range(50)} == set(CAUSES)


@pytest.mark.parametrize("written", ["Model artifact missing", "model_artifact_missing", " MODEL-ARTIFACT-MISSING "])
def test_a_scenario_is_found_however_its_name_is_written(written: str) -> None:
    assert normalise(written) == "model-artifact-missing"
    assert scenario(written).name == "model-artifact-missing"


def test_an_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(LabError, match="unknown fault scenario 'disk full': choose one of model-artifact-missing"):
        scenario("disk full")


def test_as_applied_drops_status_and_server_metadata() -> None:
    stored = dict(wine(), status={"url": "x"})
    stored["metadata"].update(uid="u", resourceVersion="7", generation=2, managedFields=[{}])
    assert as_applied(stored) == wine()


def test_injecting_redeploys_the_broken_spec_and_clearing_applies_the_original(cluster: MockCluster) -> None:
    lab = cluster.lab()
    for runtime in BUILTIN_RUNTIMES:
        cluster.put("ClusterServingRuntime", runtime)
    lab.apply(INCIDENT, VARIABLES)
    with pytest.raises(LabError, match="needs a scenario name or a seed"):
        lab.inject_fault("wine-incident")
    injection = lab.inject_fault("wine-incident", "storage-backend-not-accessible", timeout=5)
    assert injection.scenario.name == "storage-backend-not-accessible"
    assert model(cluster.stored("InferenceService", "lab", "wine-incident"))["storageUri"].startswith(
        UNREACHABLE_ENDPOINT)
    assert any(r.method == "DELETE" and r.url.path.endswith("/inferenceservices/wine-incident")
               for r in cluster.requests())
    lab.clear_fault(injection)
    assert model(cluster.stored("InferenceService", "lab", "wine-incident"))["storageUri"] == STORAGE
    drawn = lab.inject_fault("wine-incident", seed=3, timeout=5)
    assert drawn.scenario == pick_scenario(3)


def test_a_service_that_does_not_go_away_is_reported(cluster: MockCluster) -> None:
    lab = cluster.lab()
    lab.apply(INCIDENT, VARIABLES)
    cluster.put("Deployment", {"metadata": {"name": "wine-incident-predictor", "namespace": "lab"},
                               "spec": {"selector": {}, "template": {}}})  # no garbage collector in kmock
    with pytest.raises(LabError, match="still there 0.5 s after the delete: is a finalizer holding it"):
        lab.inject_fault("wine-incident", "resource-limits-too-low", timeout=0.5)


def test_waiting_for_the_symptom_returns_once_a_cause_is_named_or_when_time_is_up(cluster: MockCluster) -> None:
    lab = cluster.lab()
    lab.apply(INCIDENT, VARIABLES)
    pending = wait_for_symptom(lab, "wine-incident", timeout=0.3)
    assert pending.cause is None and not pending.ready
    cluster.patch_status_later(0.2, "InferenceService", "lab", "wine-incident", {"modelStatus": {"lastFailureInfo": {
        "reason": "NoSupportingRuntime", "message": "Specified runtime kserve-xgbserver does not support it"}}})
    assert wait_for_symptom(lab, "wine-incident", timeout=10).cause == "framework-runtime-mismatch"
