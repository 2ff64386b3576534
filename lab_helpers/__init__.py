"""Serving Lab helpers: one API over two targets (`local` stand-in, `kubernetes` cluster)."""
from __future__ import annotations

import warnings
from typing import Any

from .api import Lab

# mlflow imports tqdm.auto; in a kernel without ipywidgets that warns with a machine path. Text bars are fine.
warnings.filterwarnings("ignore", message="IProgress not found")

__all__ = ["Lab", "connect"]


def connect(target: str = "local", namespace: str = "lab", **options: Any) -> Lab:
    """The notebook's entry point: ``lab = connect(target)``; both targets answer the same verbs."""
    if target == "local":
        from .local.client import LocalLab

        return LocalLab(namespace=namespace, **options)
    if target == "kubernetes":
        from .kube.client import KubernetesLab

        return KubernetesLab(namespace=namespace, **options)
    raise ValueError(f"unknown target {target!r}: use 'local' or 'kubernetes'")
