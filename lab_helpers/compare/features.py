"""One row per operational feature: ✓ only where a notebook of this series demonstrates it for that path.

Nothing here is claimed: a ✓ is derived from two pieces of data — the manifest that implements the feature
holds the object that shows it (a ScaledObject down to 0, a Canary with analysis metrics, ...), and every
notebook that demonstrates it is in the series with a committed run free of errors. Each of those objects
selects or replaces an InferenceService's predictor, so a path that does not run as an InferenceService —
(a) raw Triton, (c) the FastAPI process — has nothing for them to attach to: its cell says "—", not ✗
("impossible") and not ✓ (you could build each one yourself; nothing here did).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import yaml

from ..paths import manifests_dir, notebooks_dir
from ..series.notebook_files import series

Docs = list[dict[str, Any]]
# Which paths run as an InferenceService (the objects of every feature select one).
RUNS_AS_INFERENCESERVICE = {"triton": False, "kserve": True, "fastapi": False}
NOT_DEMONSTRATED = "—"
MISSING = "✗ evidence missing"


def _of_kind(docs: Docs, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc.get("kind") == kind]


def _scales_to_zero(docs: Docs) -> bool:
    return any((d.get("spec") or {}).get("minReplicaCount") == 0 for d in _of_kind(docs, "ScaledObject"))


def _canary_analysis(docs: Docs) -> bool:
    return any(((d.get("spec") or {}).get("analysis") or {}).get("metrics") for d in _of_kind(docs, "Canary"))


def _rollback_threshold(docs: Docs) -> bool:
    return any("threshold" in ((d.get("spec") or {}).get("analysis") or {}) for d in _of_kind(docs, "Canary"))


def _monitors_predictor(docs: Docs) -> bool:
    return any("serving.kserve.io/inferenceservice" in str((d.get("spec") or {}).get("selector"))
               for d in _of_kind(docs, "PodMonitor") + _of_kind(docs, "ServiceMonitor"))


def _logs_inference(docs: Docs) -> bool:
    return any(((d.get("spec") or {}).get("predictor") or {}).get("logger") for d in _of_kind(docs, "InferenceService"))


def _selects_predictor(docs: Docs) -> bool:
    return any("serving.kserve.io/inferenceservice" in str((d.get("spec") or {}).get("endpointSelector"))
               for d in _of_kind(docs, "CiliumNetworkPolicy"))


def _uri_from_registry(docs: Docs) -> bool:
    """The storageUri is a placeholder that `lab.model_uri` fills from the registry, never a path by hand."""
    return any(str((((d.get("spec") or {}).get("predictor") or {}).get("model") or {}).get("storageUri", ""))
               .startswith("${") for d in _of_kind(docs, "InferenceService"))


@dataclass(frozen=True)
class Feature:
    name: str
    notebooks: tuple[str, ...]      # two-digit numbers of the notebooks that demonstrate it
    manifest: str                   # relative to manifests/
    shows: Callable[[Docs], bool]   # what in that manifest implements it


FEATURES = (
    Feature("scale to zero", ("04", "05"), "autoscaling/iris-s2z.yaml", _scales_to_zero),
    Feature("canary with analysis", ("06", "07"), "canary/30-canary.yaml", _canary_analysis),
    Feature("per-model metrics", ("08",), "monitoring/iris-podmonitor.yaml", _monitors_predictor),
    Feature("drift logging", ("09",), "drift/20-iris-logged.yaml", _logs_inference),
    Feature("network policy", ("10",), "policy/iris-callers.yaml", _selects_predictor),
    Feature("registry hand-over", ("00", "02"), "serving/iris-inferenceservice.yaml", _uri_from_registry),
    Feature("rollback", ("07",), "canary/30-canary.yaml", _rollback_threshold),
)


def committed_run_ok(path: Path) -> bool:
    """The notebook's committed outputs come from a run: every code cell executed, no error output."""
    book = nbformat.read(str(path), as_version=4)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    return bool(code) and all(cell.execution_count is not None and
                              not any(out.get("output_type") == "error" for out in cell.outputs) for cell in code)


def demonstrated(feature: Feature, books: dict[str, Path], manifests: Path) -> bool:
    """The feature's manifest shows it and each of its notebooks is in the series with a clean committed run."""
    path = manifests / feature.manifest
    if not path.is_file() or not all(number in books for number in feature.notebooks):
        return False
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]
    return feature.shows(docs) and all(committed_run_ok(books[number]) for number in feature.notebooks)


def feature_rows(folder: Path | None = None, manifests: Path | None = None,
                 link: Callable[[Path], str] = lambda path: path.stem) -> pd.DataFrame:
    """Rows feature × path ("triton", "kserve", "fastapi"); a ✓ names (`link`) the notebooks that show it."""
    books = {path.name[:2]: path for path in series(folder=folder or notebooks_dir())}
    rows = []
    for feature in FEATURES:
        shown = demonstrated(feature, books, manifests or manifests_dir())
        cells = {}
        for path, runs_as_isvc in RUNS_AS_INFERENCESERVICE.items():
            if not runs_as_isvc:
                cells[path] = NOT_DEMONSTRATED
            elif shown:
                cells[path] = "✓ " + ", ".join(link(books[number]) for number in feature.notebooks)
            else:
                cells[path] = MISSING
        rows.append({"feature": feature.name, **cells})
    return pd.DataFrame(rows)


def markdown_link(path: Path) -> str:
    """A link to the notebook beside this one, for a Markdown rendering of the rows."""
    return f"[{path.name[:2]}]({path.name})"
