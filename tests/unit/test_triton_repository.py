"""The Triton model repository generated from the ONNX export: layout and config fields."""
from __future__ import annotations

import pytest

from lab_helpers.errors import LabError
from lab_helpers.models.onnx_export import OnnxParityError, checked_onnx, parity, to_onnx
from lab_helpers.models.training import LAB_MODELS, train
from lab_helpers.models.triton_repository import TritonSettings, triton_config, write_repository


@pytest.fixture(scope="module")
def digits():
    return train(next(spec for spec in LAB_MODELS if spec.name == "digits"))


@pytest.fixture(scope="module")
def digits_onnx(digits):
    return to_onnx(digits)


def test_repository_layout_is_model_dir_with_config_and_a_numbered_version(digits_onnx, tmp_path):
    model_dir = write_repository(digits_onnx, "digits", tmp_path / "repo")
    assert model_dir == tmp_path / "repo" / "digits"
    assert sorted(str(p.relative_to(tmp_path / "repo")) for p in (tmp_path / "repo").rglob("*") if p.is_file()) == [
        "digits/1/model.onnx", "digits/config.pbtxt"]


def test_config_has_batching_instances_and_per_row_dims(digits_onnx):
    config = triton_config("digits", digits_onnx, TritonSettings(max_batch_size=32, max_queue_delay_us=250,
                                                                 instances=2))
    assert config.startswith('name: "digits"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 32\n')
    assert "dynamic_batching { max_queue_delay_microseconds: 250 }" in config
    assert "instance_group [ { kind: KIND_CPU, count: 2 } ]" in config
    assert 'name: "input"\n    data_type: TYPE_FP32\n    dims: [ 64 ]' in config
    assert 'name: "label"\n    data_type: TYPE_INT64\n    dims: [ 1 ]\n    reshape: { shape: [ ] }' in config
    assert 'name: "probabilities"\n    data_type: TYPE_FP32\n    dims: [ 10 ]' in config


def test_without_batching_the_dims_include_the_batch_dimension_and_no_batcher(digits_onnx):
    config = triton_config("digits", digits_onnx, TritonSettings(max_batch_size=0))
    assert "max_batch_size: 0" in config and "dynamic_batching" not in config
    assert "dims: [ -1, 64 ]" in config and "dims: [ -1, 10 ]" in config


def test_settings_out_of_range_are_refused():
    with pytest.raises(LabError, match="instances >= 1"):
        TritonSettings(instances=0)


def test_the_export_matches_the_original_on_the_held_out_set(digits, digits_onnx):
    report = parity(digits, digits_onnx)
    assert report.rows == len(digits.dataset.X_test) and report.ok
    assert report.label_agreement == 1.0 and report.max_abs_diff < 1e-4


def test_an_export_that_drifts_from_the_original_is_refused(digits, digits_onnx, monkeypatch):
    import onnx.numpy_helper

    broken = onnx.ModelProto()
    broken.CopyFrom(digits_onnx)
    weights = max(broken.graph.initializer, key=lambda t: len(t.raw_data) or len(t.float_data))
    weights.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(weights) * 1.5, weights.name))
    assert not parity(digits, broken).ok
    monkeypatch.setattr("lab_helpers.models.onnx_export.to_onnx", lambda trained: broken)
    with pytest.raises(OnnxParityError, match=r"differs from the scikit-learn model on 540 held-out rows"):
        checked_onnx(digits)
