"""The CRD schemas shipped in ``crds/``: which kinds and versions the lab knows, and their schemas."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from lab_helpers.manifests.schemas import Schema

DIRECTORY = Path(__file__).resolve().parent / "crds"
"""Where `generate` writes; callers pass it to `load` (tests pass a folder of their own)."""


@dataclass(frozen=True)
class Crd:
    group: str
    kind: str
    plural: str
    scope: str  # "Namespaced" or "Cluster"
    versions: dict[str, Schema]
    """served version -> structural openAPIV3Schema (Kubernetes' dialect)"""

    @property
    def name(self) -> str:
        """The CustomResourceDefinition's name, as Kubernetes requires it: ``<plural>.<group>``."""
        return f"{self.plural}.{self.group}"


@dataclass(frozen=True)
class CrdSchemas:
    by_kind: dict[tuple[str, str], Crd]
    """(API group, kind) -> its CRD"""
    groups: frozenset[str]
    """API groups the CRDs define: any other kind in them is an error, not a structural check."""


@functools.cache
def load(directory: Path) -> CrdSchemas:
    """Every CRD packaged in `directory`, read once per process (about 2 MB of JSON, tens of milliseconds)."""
    crds = [Crd(**json.loads(file.read_text(encoding="utf-8"))) for file in sorted(directory.glob("*.json"))]
    return CrdSchemas({(crd.group, crd.kind): crd for crd in crds}, frozenset(crd.group for crd in crds))
