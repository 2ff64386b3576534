"""The lab's models: deterministic scikit-learn training on datasets bundled with scikit-learn.

Every estimator is a stock scikit-learn class (no custom code), so a fresh process loads it
through skops, joblib or MLflow without importing anything from this package. Fixed seeds and
a fixed stratified split make the accuracies, and the spec hash the registry keys on, stable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import LabError

SEED = 0
TEST_SIZE = 0.3

_LOADERS: dict[str, Callable[..., Any]] = {"iris": load_iris, "wine": load_wine, "digits": load_digits}


@dataclass(frozen=True)
class Dataset:
    """A bundled dataset split once, the same way every time; features carry snake_case names."""

    name: str
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    target_names: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    """What to train and register: the registered `name` gets one version per spec, in order."""

    name: str
    variant: str
    purpose: str
    dataset: str
    estimator: BaseEstimator
    aliases: tuple[str, ...] = ()
    onnx: bool = False


@dataclass(frozen=True)
class TrainedModel:
    spec: ModelSpec
    estimator: BaseEstimator
    dataset: Dataset
    accuracy: float


LAB_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="iris",
        variant="logreg",
        purpose="baseline: the champion every lesson starts from",
        dataset="iris",
        estimator=make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        aliases=("champion",),
    ),
    ModelSpec(
        name="iris",
        variant="forest",
        purpose="canary candidate: a different model of similar accuracy",
        dataset="iris",
        estimator=RandomForestClassifier(n_estimators=50, random_state=SEED),
        aliases=("challenger",),
    ),
    ModelSpec(
        name="iris",
        variant="skewed-logreg",
        purpose=(
            "silent failure: heavy class weight on virginica makes it over-predict that class "
            "while every request still succeeds; a canary must watch output distributions"
        ),
        dataset="iris",
        estimator=make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, class_weight={0: 1, 1: 1, 2: 10})
        ),
    ),
    ModelSpec(
        name="wine",
        variant="logreg",
        purpose="a second model on another dataset, for the exit test",
        dataset="wine",
        estimator=make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    ),
    ModelSpec(
        name="digits",
        variant="mlp",
        purpose="heavier model (64 inputs, MLP) served by Triton as ONNX",
        dataset="digits",
        estimator=make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=SEED)
        ),
        onnx=True,
    ),
)


def feature_name(raw: str) -> str:
    """``'sepal length (cm)'`` -> ``'sepal_length'``: a name usable as a V2 input name or a column."""
    without_unit = re.sub(r"\(.*?\)", "", raw)
    return re.sub(r"[^0-9a-z]+", "_", without_unit.lower()).strip("_")


def load_dataset(name: str) -> Dataset:
    """Load a dataset bundled with scikit-learn (no download) and split it with the lab's seed."""
    if name not in _LOADERS:
        raise LabError(f"unknown dataset {name!r}: the lab trains on {sorted(_LOADERS)}")
    bunch = _LOADERS[name](as_frame=True)
    X = bunch.data.rename(columns=feature_name).astype("float64")
    y = bunch.target.to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SEED, stratify=y
    )
    return Dataset(
        name=name,
        X_train=X_train.reset_index(drop=True),
        X_test=X_test.reset_index(drop=True),
        y_train=y_train,
        y_test=y_test,
        target_names=tuple(str(t) for t in bunch.target_names),
    )


def train(spec: ModelSpec) -> TrainedModel:
    """Fit a fresh clone of the spec's estimator; accuracy is measured on the held-out split."""
    dataset = load_dataset(spec.dataset)
    estimator = clone(spec.estimator).fit(dataset.X_train, dataset.y_train)
    accuracy = float(accuracy_score(dataset.y_test, estimator.predict(dataset.X_test)))
    return TrainedModel(spec=spec, estimator=estimator, dataset=dataset, accuracy=accuracy)


def spec_hash(spec: ModelSpec) -> str:
    """A digest of everything that shapes the trained artifact, so a re-run can find its version."""
    estimator = spec.estimator
    payload = {
        "name": spec.name,
        "dataset": spec.dataset,
        "seed": SEED,
        "test_size": TEST_SIZE,
        "estimator": _qualified_name(estimator),
        "params": _canonical(estimator.get_params(deep=True)),
        "onnx": spec.onnx,
        "scikit-learn": sklearn.__version__,
    }
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _qualified_name(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _canonical(value: Any) -> Any:
    """JSON-able form of estimator params; nested estimators by class (their params are flattened)."""
    if isinstance(value, BaseEstimator):
        return _qualified_name(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
