"""The lab's registry against a sqlite-backed MLflow in a temporary directory (no server).

Integration tier: it trains and registers every lab model for real (about half a minute), which the unit
tier's one-minute budget cannot hold."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import joblib
import numpy as np
import onnxruntime as ort
import pytest
from mlflow import MlflowClient
from mlflow.models import Model
from sklearn.base import clone

from lab_helpers.errors import LabError, NotFound
from lab_helpers.models.registry import (EXPERIMENT_NAME, register_lab_models, registry_summary, shown_location,
                                  storage_uri)
from lab_helpers.models.training import LAB_MODELS, load_dataset, spec_hash, train

EXPECTED_VERSIONS = [("iris", 1), ("iris", 2), ("iris", 3), ("wine", 1), ("digits", 1)]
pytestmark = pytest.mark.integration


def _fresh_registry(root: Path) -> str:
    """A sqlite tracking URI whose lab experiment keeps artifacts under `root` (not the cwd)."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    MlflowClient(uri).create_experiment(EXPERIMENT_NAME, artifact_location=(root / "artifacts").as_uri())
    return uri


def _local_path(uri: str) -> Path:
    assert uri.startswith("file:///"), uri
    return Path(url2pathname(urlsplit(uri).path))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("registry")
    uri = _fresh_registry(root)
    first = register_lab_models(uri)
    second = register_lab_models(uri)
    return {"uri": uri, "db": root / "mlflow.db", "first": first, "second": second}


@pytest.fixture
def registry_copy(registry, tmp_path) -> str:
    """A tracking URI on a copy of the registered registry's database, for tests that change it.

    Training and logging all models costs seconds; copying the sqlite file costs nothing. New
    runs still land in the original experiment's artifact directory, under fresh ids.
    """
    shutil.copyfile(registry["db"], tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_first_registration_creates_every_lab_model_in_order(registry):
    assert [(v.name, v.version) for v in registry["first"]] == EXPECTED_VERSIONS
    assert all(v.created for v in registry["first"])


def test_second_registration_creates_nothing(registry):
    first, second = registry["first"], registry["second"]
    assert not any(v.created for v in second)
    assert [(v.name, v.version, v.run_id) for v in second] == [(v.name, v.version, v.run_id) for v in first]
    client = MlflowClient(registry["uri"], registry["uri"])
    assert len(client.search_model_versions("name = 'iris'")) == 3
    assert len(client.search_runs([client.get_experiment_by_name(EXPERIMENT_NAME).experiment_id])) == 5


def test_aliases_point_at_the_champion_and_the_challenger(registry):
    aliases = {(v.name, v.version): v.aliases for v in registry["second"]}
    assert aliases[("iris", 1)] == ("champion",)
    assert aliases[("iris", 2)] == ("challenger",)
    assert aliases[("iris", 3)] == ()
    uri = registry["uri"]
    assert storage_uri(uri, "iris", alias="champion") == storage_uri(uri, "iris", version=1)
    assert storage_uri(uri, "iris", alias="challenger", flavor="sklearn") == storage_uri(
        uri, "iris", version=2, flavor="sklearn"
    )


def test_accuracy_is_recorded_and_the_canary_candidate_is_as_good(registry):
    accuracy = {(v.name, v.version): v.accuracy for v in registry["second"]}
    assert accuracy[("iris", 1)] >= 0.9 and accuracy[("iris", 2)] >= 0.9
    assert abs(accuracy[("iris", 1)] - accuracy[("iris", 2)]) < 0.05
    assert accuracy[("wine", 1)] >= 0.9 and accuracy[("digits", 1)] >= 0.9
    assert accuracy == {(v.name, v.version): v.accuracy for v in registry["first"]}


def test_the_skewed_version_serves_without_errors_but_over_predicts_one_class(registry):
    iris = load_dataset("iris")
    shares = {}
    for version in (1, 3):
        model_dir = _local_path(storage_uri(registry["uri"], "iris", version=version, flavor="sklearn"))
        predictions = joblib.load(model_dir / "model.joblib").predict(iris.X_test)
        shares[version] = np.bincount(predictions, minlength=3) / len(predictions)
    assert shares[1].max() < 0.4  # balanced test set, balanced predictions
    assert shares[3][2] > 0.55  # virginica for most inputs


def test_mlflow_flavor_is_the_directory_holding_MLmodel(registry):
    uri = storage_uri(registry["uri"], "iris", version=1)
    model_dir = _local_path(uri)
    assert (model_dir / "MLmodel").is_file()
    assert "/models/m-" in uri and uri.endswith("/artifacts")  # MLflow 3 layout
    mlmodel = Model.load(model_dir)
    assert mlmodel.flavors["sklearn"]["serialization_format"] == "skops"
    assert mlmodel.get_input_schema().input_names() == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]


def test_shown_location_hides_the_machine_specific_artifact_root(registry):
    for flavor in ("mlflow", "sklearn"):
        uri = storage_uri(registry["uri"], "iris", version=1, flavor=flavor)
        shown = shown_location(registry["uri"], uri)
        assert shown.startswith("<artifact-root>/") and uri.endswith(shown.removeprefix("<artifact-root>"))
        assert str(_local_path(uri).parents[3]) not in shown  # nothing of the checkout or temp path is left
    assert shown_location(registry["uri"], "s3://elsewhere/x") == "s3://elsewhere/x"


def test_sklearn_flavor_is_a_directory_with_exactly_one_joblib(registry):
    model_dir = _local_path(storage_uri(registry["uri"], "wine", version=1, flavor="sklearn"))
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.joblib"]
    wine = load_dataset("wine")
    assert joblib.load(model_dir / "model.joblib").score(wine.X_test, wine.y_test) >= 0.9


def test_the_onnx_export_is_registered_beside_the_original_with_its_parity(registry):
    client = MlflowClient(registry["uri"], registry["uri"])
    version = client.get_model_version("digits", "1")
    metrics = client.get_run(version.run_id).data.metrics
    assert metrics["onnx_label_agreement"] == 1.0 and metrics["onnx_max_abs_diff"] < 1e-4
    assert version.tags["serving_lab.artifact.onnx"] == "triton" and version.tags["serving_lab.artifact.sklearn"]


def test_onnx_flavor_is_a_triton_repository_that_onnxruntime_serves(registry):
    repo = _local_path(storage_uri(registry["uri"], "digits", version=1, flavor="onnx"))
    assert sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()) == [
        "digits/1/model.onnx",
        "digits/config.pbtxt",
    ]
    config = (repo / "digits" / "config.pbtxt").read_text()
    assert 'name: "digits"' in config and 'platform: "onnxruntime_onnx"' in config
    assert 'name: "input"' in config and "dims: [ 64 ]" in config
    assert 'name: "label"' in config and "reshape: { shape: [ ] }" in config
    assert 'name: "probabilities"' in config and "dims: [ 10 ]" in config
    session = ort.InferenceSession(
        str(repo / "digits" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    digits = load_dataset("digits")
    labels, probabilities = session.run(
        ["label", "probabilities"], {"input": digits.X_test.to_numpy(np.float32)}
    )
    sklearn_model = joblib.load(
        _local_path(storage_uri(registry["uri"], "digits", version=1, flavor="sklearn")) / "model.joblib"
    )
    assert probabilities.shape == (len(digits.X_test), 10)
    assert (labels == sklearn_model.predict(digits.X_test)).mean() > 0.99


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "nope", "version": 1}, NotFound, "registered models: ['digits', 'iris', 'wine']"),
        ({"name": "iris", "version": 9}, NotFound, "no version 9; its versions: [1, 2, 3]"),
        ({"name": "iris", "alias": "prod"}, NotFound, "its aliases: {'challenger': 2, 'champion': 1}"),
        ({"name": "iris"}, LabError, "give exactly one of version or alias"),
        (
            {"name": "iris", "version": 1, "alias": "champion"},
            LabError,
            "give exactly one of version or alias",
        ),
        ({"name": "iris", "version": "1"}, LabError, "version must be a positive integer"),
        (
            {"name": "iris", "version": 1, "flavor": "onnx"},
            NotFound,
            "no 'onnx' artifacts; it has ['mlflow', 'sklearn']",
        ),
        ({"name": "iris", "version": 1, "flavor": "pytorch"}, LabError, "unknown flavor 'pytorch'"),
    ],
)
def test_storage_uri_errors_name_what_exists(registry, kwargs, error, message):
    with pytest.raises(error) as raised:
        storage_uri(registry["uri"], **kwargs)
    assert message in str(raised.value)


def test_rewrite_maps_the_longest_matching_prefix(registry):
    uri = storage_uri(registry["uri"], "iris", version=1)
    root = uri[: uri.index("/models/m-")]
    rewritten = storage_uri(
        registry["uri"], "iris", version=1, rewrite={"file:///": "s3://wrong/", root: "s3://mlflow/lab"}
    )
    assert rewritten == "s3://mlflow/lab" + uri[len(root) :]


def test_proxied_artifacts_need_a_rewrite_and_s3_passes_through(registry_copy):
    uri = registry_copy
    client = MlflowClient(uri, uri)
    client.create_registered_model("external")
    client.create_model_version("external", source="mlflow-artifacts:/3/models/m-1/artifacts")
    client.create_model_version("external", source="s3://bucket/3/models/m-2/artifacts")
    with pytest.raises(LabError, match="mlflow-artifacts: scheme, which KServe cannot read; pass rewrite="):
        storage_uri(uri, "external", version=1)
    proxied = {"mlflow-artifacts:/": "s3://mlflow/"}
    assert storage_uri(uri, "external", version=1, rewrite=proxied) == "s3://mlflow/3/models/m-1/artifacts"
    assert storage_uri(uri, "external", version=2) == "s3://bucket/3/models/m-2/artifacts"
    assert storage_uri(uri, "external", version=2, rewrite=proxied) == "s3://bucket/3/models/m-2/artifacts"


def test_registry_summary_is_sorted_rounded_and_complete(registry):
    table = registry_summary(registry["uri"])
    assert list(table.columns) == ["name", "version", "aliases", "flavors", "accuracy", "storage_scheme"]
    assert list(zip(table["name"], table["version"], strict=True)) == sorted(EXPECTED_VERSIONS)
    assert table.set_index(["name", "version"])["aliases"].to_dict() == {
        ("digits", 1): "",
        ("iris", 1): "champion",
        ("iris", 2): "challenger",
        ("iris", 3): "",
        ("wine", 1): "",
    }
    assert table.loc[table["name"] == "digits", "flavors"].item() == "mlflow,sklearn,onnx"
    assert set(table.loc[table["name"] != "digits", "flavors"]) == {"mlflow,sklearn"}
    assert (table["accuracy"] == table["accuracy"].round(2)).all()
    assert set(table["storage_scheme"]) == {"file"}


def test_force_registers_again_and_aliases_follow_the_spec(registry_copy):
    uri = registry_copy
    client = MlflowClient(uri, uri)
    client.set_registered_model_alias("iris", "champion", "3")  # a promotion by hand

    again = register_lab_models(uri)
    assert not any(v.created for v in again)
    assert client.get_registered_model("iris").aliases == {"champion": 1, "challenger": 2}

    forced = register_lab_models(uri, force=True)
    assert all(v.created for v in forced)
    assert [(v.name, v.version) for v in forced] == [
        ("iris", 4),
        ("iris", 5),
        ("iris", 6),
        ("wine", 2),
        ("digits", 2),
    ]
    assert client.get_registered_model("iris").aliases == {"champion": 4, "challenger": 5}
    assert [(v.name, v.version) for v in register_lab_models(uri)] == [(v.name, v.version) for v in forced]


def test_training_is_deterministic():
    first, second = train(LAB_MODELS[0]), train(LAB_MODELS[0])
    assert first.accuracy == second.accuracy
    np.testing.assert_array_equal(
        first.estimator.predict_proba(first.dataset.X_test),
        second.estimator.predict_proba(second.dataset.X_test),
    )


def test_spec_hash_tracks_the_estimator_and_is_stable_across_processes():
    spec = LAB_MODELS[0]
    changed = dataclasses.replace(spec, estimator=clone(spec.estimator).set_params(logisticregression__C=0.5))
    assert spec_hash(changed) != spec_hash(spec)
    here = [spec_hash(s) for s in LAB_MODELS]
    assert len(set(here)) == len(LAB_MODELS)
    elsewhere = subprocess.run(
        [
            sys.executable,
            "-c",
            "from lab_helpers.models.training import LAB_MODELS, spec_hash\n"
            "print(' '.join(spec_hash(s) for s in LAB_MODELS))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    assert elsewhere == here
