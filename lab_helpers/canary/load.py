"""What the canary's load test sends: the held-out rows of a dataset as one V2 request.

Each request carries every held-out row, so within any interval both revisions score the same rows
and their predicted-class shares differ only where the models disagree: the distribution check
then measures the models, not the luck of which rows each revision happened to get.
"""
from __future__ import annotations

import json
from typing import Any

from ..models.training import load_dataset


def held_out_request(dataset: str = "iris") -> dict[str, Any]:
    """A V2 request with one FP64 tensor of the dataset's held-out rows (as kserve's sklearn runtime reads it)."""
    rows = load_dataset(dataset).X_test
    return {"inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                        "data": rows.to_numpy().tolist()}]}


def load_body(dataset: str = "iris") -> str:
    """`held_out_request` as compact JSON, for a manifest variable (the load test's ``hey -d '...'``)."""
    body = json.dumps(held_out_request(dataset), separators=(",", ":"))
    if "'" in body:  # never for numbers; the command quotes the body with single quotes
        raise ValueError("the load body contains a single quote and cannot be passed to hey -d '...'")
    return body
