"""The transformer's pre- and post-processing: raw millimetre records -> the model's columns, class index -> label."""
import numpy as np
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferResponse

from lab_helpers.runtime.transformer_features import FeatureSpec, parse_spec, raw_record

SPEC = FeatureSpec(("sepal_length", "petal_width"), ("setosa", "versicolor", "virginica"))


def test_raw_millimetres_become_the_models_columns_in_centimetres():
    body = {"instances": [{"sepal_length_mm": 51, "petal_width_mm": 2}, {"petal_width_mm": 23.0,
                                                                          "sepal_length_mm": 67.5}]}
    assert SPEC.columns(body) == {"sepal_length": [5.1, 6.75], "petal_width": [0.2, 2.3]}


def test_the_v2_request_has_one_fp64_column_per_feature_in_signature_order():
    request = SPEC.infer_request("iris", {"instances": [raw_record({"petal_width": 0.2, "sepal_length": 5.1})]})
    assert request.model_name == "iris"
    assert [(i.name, i.datatype, i.shape) for i in request.inputs] == [("sepal_length", "FP64", [1]),
                                                                         ("petal_width", "FP64", [1])]
    assert request.to_rest()[0]["inputs"][0]["data"] == [5.1]  # JSON data, not the binary extension


@pytest.mark.parametrize("body, message", [
    ({"inputs": []}, 'the transformer takes a V1 body {"instances": [{...}, ...]}'),
    ({"instances": []}, 'the transformer takes a V1 body'),
    ({"instances": [[5.1, 0.2]]}, "instances[0]: expected an object with sepal_length_mm, petal_width_mm, got list"),
    ({"instances": [{"sepal_length_mm": 51}]}, "instances[0]: missing petal_width_mm"),
    ({"instances": [{"sepal_length_mm": "51", "petal_width_mm": 2}]},
     "instances[0].sepal_length_mm: expected a finite number of millimetres, got '51'"),
    ({"instances": [{"sepal_length_mm": 51, "petal_width_mm": float("nan")}]},
     "instances[0].petal_width_mm: expected a finite number"),
    ({"instances": [{"sepal_length_mm": 51, "petal_width_mm": True}]}, "instances[0].petal_width_mm"),
    ({"instances": [{"sepal_length_mm": -1, "petal_width_mm": 2}]},
     "instances[0].sepal_length_mm: a length cannot be negative (-1)"),
])
def test_bad_records_are_400s_naming_the_record_and_field(body, message):
    with pytest.raises(InvalidInput) as info:
        SPEC.columns(body)
    assert str(info.value.reason).startswith(message)


def response(values) -> InferResponse:
    data = np.asarray(values).reshape(-1, 1)
    return InferResponse(response_id="1", model_name="iris",
                         infer_outputs=[InferOutput(name="output-1", shape=list(data.shape), datatype="INT64",
                                                    data=data)])


def test_class_indices_from_mlservers_output_become_labels():
    assert SPEC.labels_of(response([0, 2, 1])) == ["setosa", "virginica", "versicolor"]


@pytest.mark.parametrize("values, message", [([3], "the predictor answered class 3; the labels are"),
                                             ([-1], "the predictor answered class -1")])
def test_an_index_outside_the_labels_is_an_error_not_a_wrong_label(values, message):
    with pytest.raises(InvalidInput, match=message):
        SPEC.labels_of(response(values))


def test_flags_parse_into_a_spec_and_an_empty_one_is_refused():
    assert parse_spec("a, b", "x,y,") == FeatureSpec(("a", "b"), ("x", "y"))
    with pytest.raises(ValueError, match="at least one feature"):
        parse_spec("", "x")


def test_raw_record_is_the_inverse_of_the_conversion():
    features = {"sepal_length": 5.1, "petal_width": 0.2}
    assert SPEC.columns({"instances": [raw_record(features)]}) == {k: [v] for k, v in features.items()}
