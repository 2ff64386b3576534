"""Where the lab keeps things: one place so every module agrees."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def lab_home() -> Path:
    """State of the local target (daemon store, MLflow, pods); git-ignored."""
    return Path(os.environ.get("LAB_HOME", REPO_ROOT / ".lab")).resolve()


def build_dir() -> Path:
    return Path(os.environ.get("LAB_BUILD_DIR", REPO_ROOT / "build")).resolve()


def notebooks_dir() -> Path:
    return REPO_ROOT / "notebooks"


def manifests_dir() -> Path:
    return REPO_ROOT / "manifests"


def shared_dir() -> Path | None:
    """The reference data (CRDs, protocol spec) laid beside the repo, if present."""
    candidate = Path(os.environ.get("LAB_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return candidate if candidate.is_dir() else None
