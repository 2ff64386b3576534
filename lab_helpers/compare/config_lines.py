"""Lines of configuration the user writes for each path: non-blank, non-comment lines (docstrings too, for code).

A stand-in for the cost of owning a path, counted from the files themselves so it follows them: (a) Triton's
``config.pbtxt`` and its command line, (b) the same ``config.pbtxt`` (the storageUri's repository) plus the
ServingRuntime and InferenceService YAML, (c) the FastAPI app's source and its command line. The YAML of the
operational features (autoscaling, canary, monitors, policy) is not counted here: a feature row says which
notebook adds it, with its own manifests.
"""
from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

from . import fastapi_app
from .kserve_path import RUNTIME_MANIFEST, SERVICE_MANIFEST
from .models import MODEL

COMMAND = "command line"
TRITON_CONFIG = "config.pbtxt"
CODE_TOKENS = frozenset(set(tokenize.tok_name) - {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                                    tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER})


def config_lines(text: str) -> int:
    """YAML or protobuf text: lines that are neither blank, nor a ``#`` comment, nor a YAML document marker."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#")
               and line.strip() != "---")


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def python_lines(source: str) -> int:
    """Python source: lines holding code, not counting comments, blank lines and docstrings."""
    code = {token.start[0] for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type in CODE_TOKENS}
    return len(code - _docstring_lines(ast.parse(source)))


def user_config(repository: Path) -> dict[str, dict[str, int]]:
    """Per path, per file the user writes: its lines. `repository` holds the model's ``config.pbtxt``."""
    triton = config_lines((repository / MODEL / TRITON_CONFIG).read_text())
    return {
        "triton": {TRITON_CONFIG: triton, COMMAND: 1},
        "kserve": {TRITON_CONFIG: triton, RUNTIME_MANIFEST.name: config_lines(RUNTIME_MANIFEST.read_text()),
                   SERVICE_MANIFEST.name: config_lines(SERVICE_MANIFEST.read_text())},
        "fastapi": {Path(fastapi_app.__file__).name: python_lines(Path(fastapi_app.__file__).read_text()), COMMAND: 1},
    }
