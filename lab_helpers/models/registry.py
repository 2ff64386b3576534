"""The lab's model registry: register the lab's models in MLflow, and turn "name + version or
alias" into the `storageUri` a serving manifest needs.

KServe has no ``models:/`` scheme (the storageUri prefixes it accepts:
https://github.com/kserve/kserve/blob/v0.20.0/pkg/controller/v1beta1/inferenceservice/utils/utils.go#L48),
so a manifest carries the physical location of the artifacts. Each registered version points at one
MLflow run that holds, besides the MLflow model itself (MLflow 3 layout:
``<root>/<experiment>/models/<model_id>/artifacts``), plain artifacts for the other runtimes: a
directory with exactly one ``model.joblib`` for kserve-sklearnserver and, for the heavy model, a
Triton model repository. A version tag names each of those directories, so `storage_uri` can find
them for any flavor.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import joblib
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from ..errors import LabError, NotFound
from .training import LAB_MODELS, ModelSpec, TrainedModel, spec_hash, train
from .triton_repository import write_repository

EXPERIMENT_NAME = "serving-lab"
# Logs "Waiting up to 300 seconds for model version to finish creation" at INFO for every version.
REGISTRY_WAIT_LOGGER = "mlflow.store.model_registry.abstract_store"
SPEC_HASH_TAG = "serving_lab.spec_hash"
VARIANT_TAG = "serving_lab.variant"
ARTIFACT_TAG_PREFIX = "serving_lab.artifact."  # + flavor -> directory under the run's artifacts
MODEL_ARTIFACT = "model"
SKLEARN_DIR = "sklearn"
TRITON_DIR = "triton"
FLAVORS = ("mlflow", "sklearn", "onnx")
REWRITE_ENV = "LAB_ARTIFACT_REWRITE"
# The storageUri schemes KServe accepts ("" is a plain local path), SupportedStorageURIPrefixList in
# https://github.com/kserve/kserve/blob/v0.20.0/pkg/controller/v1beta1/inferenceservice/utils/utils.go#L48
KSERVE_STORAGE_SCHEMES = frozenset(
    {"", "file", "s3", "gs", "pvc", "http", "https", "hdfs", "webhdfs", "oci", "hf"}
)


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version of the lab; `created` is False when an earlier run made it."""

    name: str
    version: int
    aliases: tuple[str, ...]
    accuracy: float
    run_id: str
    created: bool


def register_lab_models(tracking_uri: str, force: bool = False) -> list[RegisteredVersion]:
    """Train, log and register every model of `training.LAB_MODELS`, in order.

    Idempotent: a version whose spec-hash tag matches the spec is reused, so a re-run creates
    nothing; `force=True` registers new versions anyway. Aliases are declarative: each alias a
    spec names (``champion`` -> iris logreg, ``challenger`` -> iris forest) is moved to the
    newest version of that spec, undoing any promotion made by hand since.
    """
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client)
    found: list[tuple[ModelSpec, ModelVersion, bool]] = []
    for spec in LAB_MODELS:
        digest = spec_hash(spec)
        existing = None if force else _newest_with_hash(client, spec.name, digest)
        if existing is not None:
            found.append((spec, existing, False))
        else:
            found.append((spec, _log_and_register(client, experiment_id, train(spec), digest), True))
    for spec, version, _ in found:
        for alias in spec.aliases:
            if str(client.get_registered_model(spec.name).aliases.get(alias)) != str(version.version):
                client.set_registered_model_alias(spec.name, alias, version.version)
    return [
        RegisteredVersion(
            name=spec.name,
            version=int(version.version),
            aliases=_aliases_of(client.get_registered_model(spec.name), version.version),
            accuracy=_accuracy(client, version),
            run_id=version.run_id,
            created=created,
        )
        for spec, version, created in found
    ]


def artifact_rewrite() -> dict[str, str]:
    """URI prefixes to rewrite, from ``$LAB_ARTIFACT_REWRITE`` (``"mlflow-artifacts:/=s3://mlflow/"``, comma-separated).

    For an MLflow server that proxies its artifacts: the runtime must read the bucket, not the proxy.
    """
    pairs = [pair for pair in os.environ.get(REWRITE_ENV, "").split(",") if pair.strip()]
    return dict(pair.split("=", 1) for pair in pairs)


def storage_uri(
    tracking_uri: str,
    name: str,
    version: int | None = None,
    alias: str | None = None,
    flavor: str = "mlflow",
    rewrite: dict[str, str] | None = None,
) -> str:
    """The `storageUri` for a registered model version, given exactly one of `version` or `alias`.

    `flavor` picks what the runtime loads: ``"mlflow"`` the directory holding ``MLmodel``
    (kserve-mlserver), ``"sklearn"`` the directory holding one ``model.joblib``
    (kserve-sklearnserver), ``"onnx"`` the Triton model repository (kserve-tritonserver).
    `rewrite` maps URI prefixes, longest first, for a server that proxies its artifacts:
    ``{"mlflow-artifacts:/": "s3://mlflow/"}``. Locally the result is a ``file://`` URI; on a
    cluster it is the bucket's ``s3://`` path, which passes through unchanged.
    """
    if flavor not in FLAVORS:
        raise LabError(f"unknown flavor {flavor!r}: use one of {list(FLAVORS)}")
    client = _client(tracking_uri)
    model_version = _resolve(client, tracking_uri, name, version, alias)
    if flavor == "mlflow":
        location = client.get_model_version_download_uri(name, model_version.version)
    else:
        subdir = model_version.tags.get(ARTIFACT_TAG_PREFIX + flavor)
        if subdir is None:
            raise NotFound(
                f"model {name!r} version {model_version.version} has no {flavor!r} artifacts; "
                f"it has {_flavors_of(model_version)}"
            )
        run_root = client.get_run(model_version.run_id).info.artifact_uri
        location = f"{run_root.rstrip('/')}/{subdir}"
    return _servable(location, rewrite or {})


def shown_location(tracking_uri: str, location: str) -> str:
    """`location` with the server's artifact root replaced by ``<artifact-root>``, for printing.

    The root is what differs between machines (a checkout path, a bucket); what follows it
    (``<experiment>/models/<model_id>/artifacts``) is the lesson. The root is the artifact location
    of the experiment the URI lies under, less its experiment-id segment when it ends with one (an
    MLflow server's ``--default-artifact-root`` layout); a URI under no experiment is returned as it is.
    """
    for experiment in _client(tracking_uri).search_experiments():
        prefix = _as_uri(experiment.artifact_location).rstrip("/")
        if location.startswith(prefix + "/"):
            root = prefix.removesuffix("/" + experiment.experiment_id)
            return "<artifact-root>" + location[len(root):]
    return location


def registry_summary(tracking_uri: str) -> pd.DataFrame:
    """One row per version of the lab's models, sorted and rounded so a notebook checkpoint is stable.

    Only the lab's model names are listed, so a shared cluster registry gives the same table.
    """
    client = _client(tracking_uri)
    rows = []
    for name in sorted({spec.name for spec in LAB_MODELS}):
        versions = client.search_model_versions(f"name = '{name}'")
        if not versions:
            continue
        model = client.get_registered_model(name)
        for version in versions:
            location = _as_uri(client.get_model_version_download_uri(name, version.version))
            rows.append(
                {
                    "name": name,
                    "version": int(version.version),
                    "aliases": ",".join(_aliases_of(model, version.version)),
                    "flavors": ",".join(_flavors_of(version)),
                    "accuracy": round(_accuracy(client, version), 2),
                    "storage_scheme": urlsplit(location).scheme,
                }
            )
    columns = ["name", "version", "aliases", "flavors", "accuracy", "storage_scheme"]
    return pd.DataFrame(rows, columns=columns).sort_values(["name", "version"]).reset_index(drop=True)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence one chatty INFO logger for a block, so notebook outputs show only what matters."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _experiment_id(client: MlflowClient) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        return client.create_experiment(EXPERIMENT_NAME)
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _newest_with_hash(client: MlflowClient, name: str, digest: str) -> ModelVersion | None:
    matches = [
        v for v in client.search_model_versions(f"name = '{name}'") if v.tags.get(SPEC_HASH_TAG) == digest
    ]
    return max(matches, key=lambda v: int(v.version), default=None)


def _log_and_register(
    client: MlflowClient, experiment_id: str, trained: TrainedModel, digest: str
) -> ModelVersion:
    """Log one run (metric, plain artifacts, then the MLflow model) and register its model.

    The version is created last, with its tags in the same call, so a version never exists
    without the artifacts and the spec hash that the idempotence check relies on.
    """
    spec = trained.spec
    artifact_dirs = {"sklearn": SKLEARN_DIR, **({"onnx": TRITON_DIR} if spec.onnx else {})}
    with _fluent_tracking(client.tracking_uri), tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"{spec.name}-{spec.variant}") as run:
            mlflow.log_params(
                {"dataset": spec.dataset, "variant": spec.variant, "estimator": type(spec.estimator).__name__}
            )
            mlflow.log_metric("accuracy", trained.accuracy)
            _write_joblib_dir(trained, staging / SKLEARN_DIR)
            mlflow.log_artifacts(str(staging / SKLEARN_DIR), SKLEARN_DIR)
            if spec.onnx:
                from .onnx_export import checked_onnx  # skl2onnx and onnx take seconds to import: only here

                # Registered beside the original only once it answers like it on the held-out set.
                onnx_model, parity = checked_onnx(trained)
                mlflow.log_metrics({"onnx_max_abs_diff": parity.max_abs_diff,
                                    "onnx_label_agreement": parity.label_agreement})
                write_repository(onnx_model, spec.name, staging / TRITON_DIR)
                mlflow.log_artifacts(str(staging / TRITON_DIR), TRITON_DIR)
            model_info = _log_mlflow_model(trained)
        _ensure_registered_model(client, spec.name)
        # Inside the borrowed global URI: a sqlite registry resolves the models:/ source through it.
        with _quiet(REGISTRY_WAIT_LOGGER):
            return client.create_model_version(
                name=spec.name,
                source=model_info.model_uri,
                run_id=run.info.run_id,
                model_id=model_info.model_id,
                description=spec.purpose,
                tags={
                    SPEC_HASH_TAG: digest,
                    VARIANT_TAG: spec.variant,
                    **{ARTIFACT_TAG_PREFIX + flavor: subdir for flavor, subdir in artifact_dirs.items()},
                },
            )


def _log_mlflow_model(trained: TrainedModel) -> ModelInfo:
    """Log with skops (MLflow's default) and a signature whose columns are the feature names.

    Loading a skops model needs its non-default types listed as trusted; they are the types of
    an estimator trained right here. Explicit pip requirements skip MLflow's slow inference of them.
    """
    import skops.io  # lists its trusted types at import by scanning every loaded module: only when logging

    X_train = trained.dataset.X_train
    with warnings.catch_warnings():
        # Class ids are integers; MLflow hints that integer columns cannot hold missing values.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        return mlflow.sklearn.log_model(
            trained.estimator,
            name=MODEL_ARTIFACT,
            signature=infer_signature(X_train, trained.estimator.predict(X_train)),
            input_example=trained.dataset.X_test.head(2),
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(trained.estimator)),
        )


@contextlib.contextmanager
def _fluent_tracking(tracking_uri: str) -> Iterator[None]:
    """`mlflow.sklearn.log_model` only logs through the global tracking URI: borrow it briefly.

    Run URLs are not printed: they carry a machine-specific port into notebook outputs.
    """
    previous_uri = mlflow.get_tracking_uri()
    saved_env = {
        k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")
    }
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous_uri)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        client.create_registered_model(name)


def _write_joblib_dir(trained: TrainedModel, dest: Path) -> None:
    """kserve-sklearnserver wants exactly one ``*.joblib``/``*.pkl`` file in the model directory."""
    dest.mkdir(parents=True)
    joblib.dump(trained.estimator, dest / "model.joblib")


def _resolve(
    client: MlflowClient, tracking_uri: str, name: str, version: int | None, alias: str | None
) -> ModelVersion:
    """The model version named by `version` or `alias`; NotFound lists what does exist."""
    if (version is None) == (alias is None):
        raise LabError(f"model {name!r}: give exactly one of version or alias (got {version=}, {alias=})")
    try:
        model = client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        known = sorted(m.name for m in client.search_registered_models())
        raise NotFound(
            f"no registered model {name!r} at {tracking_uri}; registered models: {known}"
        ) from None
    if alias is not None:
        if alias not in model.aliases:
            existing = {a: int(v) for a, v in sorted(model.aliases.items())}
            raise NotFound(f"model {name!r} has no alias {alias!r}; its aliases: {existing}")
        return client.get_model_version_by_alias(name, alias)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise LabError(f"model {name!r}: version must be a positive integer, got {version!r}")
    versions = {int(v.version): v for v in client.search_model_versions(f"name = '{name}'")}
    if version not in versions:
        raise NotFound(f"model {name!r} has no version {version}; its versions: {sorted(versions)}")
    return versions[version]


def _servable(location: str, rewrite: dict[str, str]) -> str:
    """Apply the prefix rewrite, then refuse what KServe's storage initializer cannot read."""
    uri = _as_uri(location)
    for prefix in sorted(rewrite, key=len, reverse=True):
        if uri.startswith(prefix):
            uri = rewrite[prefix] + uri[len(prefix) :]
            break
    scheme = urlsplit(uri).scheme
    if scheme not in KSERVE_STORAGE_SCHEMES:
        raise LabError(
            f"storage location {uri!r} uses the {scheme}: scheme, which KServe cannot read; pass "
            f"rewrite={{'{scheme}:/': 's3://<bucket>/'}} naming the store behind the MLflow server"
        )
    return uri


def _as_uri(location: str) -> str:
    """A plain absolute path (a sqlite-backed store's artifact root) becomes a ``file://`` URI."""
    return Path(location).as_uri() if location.startswith("/") else location


def _aliases_of(model: RegisteredModel, version: str | int) -> tuple[str, ...]:
    return tuple(sorted(alias for alias, v in model.aliases.items() if str(v) == str(version)))


def _flavors_of(version: ModelVersion) -> list[str]:
    logged = {
        key.removeprefix(ARTIFACT_TAG_PREFIX) for key in version.tags if key.startswith(ARTIFACT_TAG_PREFIX)
    }
    return [flavor for flavor in FLAVORS if flavor == "mlflow" or flavor in logged]


def _accuracy(client: MlflowClient, version: ModelVersion) -> float:
    if not version.run_id:
        return float("nan")
    return client.get_run(version.run_id).data.metrics.get("accuracy", float("nan"))
