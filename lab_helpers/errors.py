"""Errors the lab raises: each names what is wrong, where, and what to read next."""
from __future__ import annotations

from typing import Any


class LabError(Exception):
    """Base of every error the lab raises on purpose."""


class ManifestError(LabError):
    """A document is invalid; nothing from the apply that carried it was applied.

    `document` names the document (source and index, kind/name), `path` the field path
    (e.g. ``spec.predictor.model.modelFormat``), `expected` what the schema wanted.
    """

    def __init__(self, document: str, path: str, expected: str):
        self.document, self.path, self.expected = document, path, expected
        where = f"{document}: field {path}" if path else document
        super().__init__(f"{where}: {expected} (nothing from this apply was applied)")


class NotFound(LabError):
    pass


class Conflict(LabError):
    pass


class Forbidden(LabError):
    pass


class NotReady(LabError):
    """A wait ran out; carries the diagnosis (reason, message, last events, runbook)."""

    def __init__(self, diagnosis: Any):
        self.diagnosis = diagnosis
        super().__init__(str(diagnosis))


class TargetUnavailable(LabError):
    """The target (local daemon or cluster) cannot be reached; the message says how to fix it."""
