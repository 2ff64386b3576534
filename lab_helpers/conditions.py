"""Reading Kubernetes conditions the same way on both targets."""
from __future__ import annotations

from typing import Any


def find_condition(obj: dict[str, Any], condition: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == condition), None)


def condition_met(obj: dict[str, Any], condition: str) -> bool:
    """`condition` is True and the status describes the current spec (not a stale generation)."""
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    found = find_condition(obj, condition)
    if found is None or found.get("status") != "True":
        return False
    return not any(seen is not None and generation is not None and seen < generation
                   for seen in (observed, found.get("observedGeneration")))


# Kinds with a final state that rules every other condition out: a Failed Job never becomes Complete.
FINAL_FAILURE: dict[str, str] = {"Job": "Failed"}


def failed_for_good(kind: str, obj: dict[str, Any], condition: str) -> bool:
    """The object (of `kind`) reached a final failure, so waiting longer for `condition` cannot help."""
    final = FINAL_FAILURE.get(kind)
    return final is not None and final != condition and condition_met(obj, final)


def condition_summary(obj: dict[str, Any]) -> str:
    """`PredictorReady=False (MinimumReplicasUnavailable) Ready=False`: the one line a progress display needs."""
    parts = []
    for c in (obj.get("status") or {}).get("conditions") or []:
        reason = f" ({c['reason']})" if c.get("reason") and c.get("status") != "True" else ""
        parts.append(f"{c.get('type')}={c.get('status')}{reason}")
    return " ".join(parts) or "no conditions reported yet"
