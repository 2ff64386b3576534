"""The phase's mastery checklist and validation criteria, each mapped to what in this repo proves it.

One table, in the lab's own words. Notebooks are named by their two-digit number and found on disk, so a
notebook that has not landed yet shows as "not written yet" rather than a dead link; `more` on the home
page lists any notebook no item names. Pages are named as `links.resolve` reads them, without the suffix.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MasteryItem:
    text: str
    notebooks: tuple[str, ...]  # two-digit numbers, the first is the one that proves the item


@dataclass(frozen=True)
class Criterion:
    text: str
    notebooks: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()  # the repo pages that prove it ("adr/0007" names the ADR by its number)


MASTERY: tuple[MasteryItem, ...] = (
    MasteryItem("KServe installed declaratively, by Flux from Helm charts", ("01",)),
    MasteryItem("An InferenceService serving a model taken from the MLflow registry", ("02", "00")),
    MasteryItem("Inference over plain HTTP (curl), with the response shape checked", ("03",)),
    MasteryItem("Scale-to-zero for the InferenceService with a KEDA ScaledObject", ("04",)),
    MasteryItem("The cold-start path observed: idle, request, spin-up, answer", ("05",)),
    MasteryItem("Flagger installed, with a canary policy on the InferenceService", ("06",)),
    MasteryItem("A second model version rolled out as an observed canary", ("07",)),
    MasteryItem("Prometheus metrics per model: latency, throughput, error rate", ("08",)),
    MasteryItem("A drift-detection job watching the prediction distribution", ("09",)),
    MasteryItem("A Cilium network policy: only chosen callers reach the InferenceService", ("10",)),
    MasteryItem("Triton as a custom runtime for a performance-critical model", ("11",)),
)

VALIDATION: tuple[Criterion, ...] = (
    Criterion("KServe running with at least one InferenceService", notebooks=("02",)),
    Criterion("Scale-to-zero working", notebooks=("04",)),
    Criterion("A Flagger canary tested: promoted and rolled back", notebooks=("07",)),
    Criterion("Drift detection in place", notebooks=("09",)),
    Criterion("Every mastery item above proved by an executed notebook"),
    Criterion("The standalone comparison and its reflection", notebooks=("12",)),
    Criterion("Serving runbooks: not ready, scale-to-zero failing, canary rolled back, drift alert, runtime not "
              "loading the model", pages=("runbooks/service-not-ready", "runbooks/scale-to-zero-failing",
                                          "runbooks/canary-rollback-triggered", "runbooks/prediction-drift-alert",
                                          "runbooks/runtime-not-loading-model")),
    Criterion("Decisions: KServe over Seldon Core, MLflow models over native PyTorch packaging, Flagger for canary",
              pages=("adr/0009", "adr/0010", "adr/0007")),
    Criterion("Pattern entries: model serving, inference shapes, serverless inference, canary deploys, the operator "
              "pattern", pages=("patterns/model-serving", "patterns/inference-shapes", "patterns/serverless-inference",
                                "patterns/canary-deploys", "patterns/operator-pattern")),
    Criterion("The exit test", notebooks=("13",)),
    Criterion("A weekly log", pages=("docs/weekly-log",)),
)
