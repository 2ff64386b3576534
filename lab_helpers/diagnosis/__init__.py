"""Diagnosis for both targets: `reasons` (a status reason -> its runbook; why one object is not Ready) and
`service` (what broke an InferenceService: status, container exits, events -> one of the exit test's causes)."""
from .reasons import (DEFAULT_RUNBOOK, FRAMEWORK_FORMATS, FRAMEWORK_LOAD_RUNBOOK, KIND_RUNBOOKS, OOM_EXIT_CODE,
                      RUNBOOKS, Diagnosis, diagnose, diagnosed_reasons, event_line, model_runbook)
from .service import (ARTIFACT_MISSING, CAUSES, ISVC_LABEL, LIMITS_TOO_LOW, RUNTIME_MISMATCH, STORAGE_INITIALIZER,
                      STORAGE_UNREACHABLE, ContainerExit, ServiceDiagnosis, ServiceReader, container_exits,
                      current_events, diagnose_inference_service, diagnose_service, pod_status_column, storage_cause)

__all__ = [
    "ARTIFACT_MISSING", "CAUSES", "DEFAULT_RUNBOOK", "FRAMEWORK_FORMATS", "FRAMEWORK_LOAD_RUNBOOK", "ISVC_LABEL",
    "KIND_RUNBOOKS", "LIMITS_TOO_LOW", "OOM_EXIT_CODE", "RUNBOOKS", "RUNTIME_MISMATCH", "STORAGE_INITIALIZER",
    "STORAGE_UNREACHABLE", "ContainerExit", "Diagnosis", "ServiceDiagnosis", "ServiceReader", "container_exits",
    "current_events", "diagnose", "diagnose_inference_service", "diagnose_service", "diagnosed_reasons",
    "event_line", "model_runbook", "pod_status_column", "storage_cause",
]
