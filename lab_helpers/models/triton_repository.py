"""A Triton model repository generated from an ONNX model: the layout and `config.pbtxt` a cluster's Triton serves.

    <repo>/<model>/config.pbtxt
    <repo>/<model>/1/model.onnx

The config names the onnxruntime platform, the tensors (dims exclude the batch dimension when
``max_batch_size`` > 0), **dynamic batching** (requests that arrive within the queue delay are
run as one batch) and the **instance count** (how many copies of the model run side by side).
Layout and fields: https://github.com/triton-inference-server/server/blob/main/docs/user_guide/model_configuration.md
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from ..errors import LabError

_TRITON_DTYPES = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
    onnx.TensorProto.STRING: "TYPE_STRING",
}
MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.pbtxt"


@dataclass(frozen=True)
class TritonSettings:
    """The serving knobs of the config. 64 rows covers the largest batch the lab sends in one request;
    100 µs of queue delay lets concurrent single-row requests meet in one batch at a cost of at most that."""

    max_batch_size: int = 64
    max_queue_delay_us: int = 100
    instances: int = 1  # one per core is the usual start; the local machine has 2 and the load generator needs one

    def __post_init__(self) -> None:
        if self.max_batch_size < 0 or self.max_queue_delay_us < 0 or self.instances < 1:
            raise LabError(f"Triton settings out of range: {self} (max_batch_size >= 0, max_queue_delay_us >= 0, "
                           "instances >= 1)")


def write_repository(model: onnx.ModelProto, name: str, repo: Path,
                     settings: TritonSettings = TritonSettings()) -> Path:
    """Write the model and its config under `repo`; returns the model's directory."""
    model_dir = Path(repo) / name
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "1" / MODEL_FILE).write_bytes(model.SerializeToString())
    (model_dir / CONFIG_FILE).write_text(triton_config(name, model, settings))
    return model_dir


def triton_config(name: str, model: onnx.ModelProto, settings: TritonSettings = TritonSettings()) -> str:
    """The config.pbtxt text. A ``[batch]``-shaped tensor (the predicted label) is declared ``dims: [1]``
    with an empty reshape, the Triton idiom for a per-row scalar."""
    batched = settings.max_batch_size > 0
    inputs = ",\n".join(_tensor(t, batched) for t in model.graph.input)
    outputs = ",\n".join(_tensor(t, batched) for t in model.graph.output)
    batching = (f"dynamic_batching {{ max_queue_delay_microseconds: {settings.max_queue_delay_us} }}\n"
                if batched else "")
    return (
        f'name: "{name}"\n'
        'platform: "onnxruntime_onnx"\n'
        f"max_batch_size: {settings.max_batch_size}\n"
        f"input [\n{inputs}\n]\n"
        f"output [\n{outputs}\n]\n"
        f"{batching}"
        f"instance_group [ {{ kind: KIND_CPU, count: {settings.instances} }} ]\n"
    )


def _tensor(tensor: onnx.ValueInfoProto, batched: bool) -> str:
    elem_type = tensor.type.tensor_type.elem_type
    if elem_type not in _TRITON_DTYPES:
        raise LabError(
            f"ONNX tensor {tensor.name!r} has type {onnx.TensorProto.DataType.Name(elem_type)}, "
            f"which the lab's Triton config does not map"
        )
    dims = [d.dim_value if d.dim_value else -1 for d in tensor.type.tensor_type.shape.dim]
    per_row = dims[1:] if batched else dims
    lines = [f'    name: "{tensor.name}"', f"    data_type: {_TRITON_DTYPES[elem_type]}"]
    if per_row:
        lines.append(f"    dims: [ {', '.join(str(d) for d in per_row)} ]")
    else:
        lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
    return "  {\n" + "\n".join(lines) + "\n  }"
