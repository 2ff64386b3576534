"""Part 1's check: the new service woke from zero for a request and answered it right, every step on record."""
from __future__ import annotations

import pandas as pd

from ..inference import v2_tensor
from ..models.training import load_dataset
from ..scaling.coldstart import MOMENTS

# Moments only the local interceptor records (the KEDA HTTP add-on keeps no per-request hold): not required.
HOLD_MOMENTS = ("request held", "request forwarded")


def held_out_request(dataset: str, row: int = 0) -> tuple[dict, int]:
    """A V2 request (one ``input-0`` tensor, as the sklearn runtimes take it) for a held-out row, and its label."""
    data = load_dataset(dataset)
    return v2_tensor("input-0", data.X_test.iloc[[row]].to_numpy(), "FP64"), int(data.y_test[row])


def cold_start_checks(frame: pd.DataFrame, expected: int) -> dict[str, bool]:
    """What `scaling.cold_trials.run_trials` measured, as pass/fail facts: every request answered, each woken pod's
    first answer the held-out row's label, and the cold path's moments all recorded."""
    cold = frame[frame["kind"] == "cold"]
    required = cold.reindex(columns=[m for m in MOMENTS if m not in HOLD_MOMENTS])
    woke = not cold.empty
    return {"every request answered 200": bool((frame["status"] == 200).all()),
            "first answer after a wake-up is right": woke and all(p == [expected] for p in cold["prediction"]),
            "every moment of the cold path recorded": woke and bool(required.notna().all().all())}
