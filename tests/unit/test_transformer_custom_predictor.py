"""The custom predictor does the transformer's conversion and the model's prediction in one process."""
import numpy as np
import pandas as pd
import pytest
from kserve.errors import InvalidInput

from lab_helpers.runtime.custom_predictor import CustomPredictor, parse_args
from lab_helpers.runtime.transformer_features import FeatureSpec

SPEC = FeatureSpec(("sepal_length", "petal_width"), ("setosa", "versicolor", "virginica"))


class Pyfunc:
    """Stands for the loaded MLflow model: class 2 when the petal is wide, else 0; keeps what it was given."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.frame = frame
        return np.where(frame["petal_width"] > 1.0, 2, 0)


def test_raw_records_in_labels_out_with_the_models_columns_in_between(tmp_path):
    model = CustomPredictor("iris-custom", tmp_path, SPEC)
    model._pyfunc = Pyfunc()
    body = {"instances": [{"sepal_length_mm": 51, "petal_width_mm": 2}, {"sepal_length_mm": 67, "petal_width_mm": 23}]}
    assert model.predict(body) == {"predictions": ["setosa", "virginica"]}
    assert model._pyfunc.frame.to_dict("list") == {"sepal_length": [5.1, 6.7], "petal_width": [0.2, 2.3]}


def test_bad_records_are_the_same_400s_as_the_transformers(tmp_path):
    model = CustomPredictor("iris-custom", tmp_path, SPEC)
    model._pyfunc = Pyfunc()
    with pytest.raises(InvalidInput, match="instances\\[0\\]: missing petal_width_mm"):
        model.predict({"instances": [{"sepal_length_mm": 51}]})


def test_the_images_flags(monkeypatch):
    monkeypatch.setenv("LAB_POD_ROOT", "/pods/p1")
    monkeypatch.setenv("LAB_POD_PORTS", "8080=41000")
    args = parse_args(["--model_name=iris-custom", "--model_dir=/mnt/models", "--http_port=8080",
                       "--features=a,b", "--labels=x,y"])
    assert (str(args.model_dir), args.http_port) == ("/pods/p1/mnt/models", 41000)
