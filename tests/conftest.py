"""Shared fixtures: a small MLflow iris model on disk, and a local target in a throw-away LAB_HOME."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="session")
def iris_mlflow_dir(tmp_path_factory) -> Path:
    """An MLflow sklearn model directory (MLmodel + skops file) as a registry download would give."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = FEATURES
    model = LogisticRegression(max_iter=500).fit(X, y)
    path = tmp_path_factory.mktemp("models") / "iris"
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(X, model.predict(X)))
    return path


@pytest.fixture(scope="session")
def sklearn_dir(tmp_path_factory) -> Path:
    """A kserve-sklearnserver model directory: one model.joblib."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    path = tmp_path_factory.mktemp("models") / "iris-sklearn"
    path.mkdir()
    joblib.dump(LogisticRegression(max_iter=1000).fit(*load_iris(return_X_y=True)), path / "model.joblib")
    return path


def v2_payload(rows: list[list[float]]) -> dict:
    """MLServer's V2 contract for MLflow models: one named input per column."""
    import pandas as pd

    from lab_helpers.inference import v2_columns

    return v2_columns(pd.DataFrame(rows, columns=FEATURES))


@pytest.fixture(scope="module")
def local_home(tmp_path_factory):
    """A LAB_HOME of its own for a test module; every process started in it is stopped at the end."""
    home = tmp_path_factory.mktemp("labhome")
    old = os.environ.get("LAB_HOME")
    os.environ["LAB_HOME"] = str(home)
    yield home
    from lab_helpers.local.control import down

    down(home)
    if old is None:
        os.environ.pop("LAB_HOME", None)
    else:
        os.environ["LAB_HOME"] = old


@pytest.fixture
def series_dir(tmp_path, monkeypatch) -> Path:
    """An empty notebook series of its own, with build output under tmp_path."""
    books = tmp_path / "notebooks"
    books.mkdir()
    monkeypatch.setenv("LAB_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setattr("lab_helpers.series.notebook_files.notebooks_dir", lambda: books)
    return books


@pytest.fixture(scope="module")
def monitored_lab(local_home):
    """The local target with KServe (Flux) and Prometheus (kube-prometheus-stack) installed, in its own LAB_HOME."""
    import lab_helpers
    from lab_helpers.paths import manifests_dir

    lab = lab_helpers.connect("local")
    lab.apply(manifests_dir() / "flux")
    lab.apply(manifests_dir() / "platform" / "kube-prometheus-stack.yaml")
    lab.wait_ready("HelmRelease", "kube-prometheus-stack", namespace="monitoring", timeout=60)
    return lab
