"""The schemas manifests are checked against, owned by the package so a plain clone has them.

- `packaged`: structural schemas of the upstream CRDs the lab uses, in ``crds/`` (made by `generate`).
- `builtin`: Kubernetes' own kinds, from the kubernetes-validate package at a pinned version.
- `names`: the name rules the API server (or a kind's webhook) applies to ``metadata``.
- `dialect`: Kubernetes' OpenAPI dialect translated to JSON Schema.
"""
from typing import Any

Schema = dict[str, Any]
"""One schema node, as parsed from JSON or YAML."""
