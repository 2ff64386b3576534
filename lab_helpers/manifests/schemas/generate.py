"""Write the packaged CRD schemas from upstream CRD files: ``python -m lab_helpers.manifests.schemas.generate``.

The CRD files themselves (2 MB for KServe's InferenceService alone) are not shipped: each CRD
becomes one ``<plural>.<group>.json`` holding its names, scope and the structural schema of every
served version, descriptions stripped. Output is byte-stable (sorted keys, one key or item per line, no indent), so a
re-run over the same files changes nothing and a diff shows exactly what upstream changed.
Inputs are upstream's own CRD files, unedited: KServe (github.com/kserve/kserve,
config/crd/full), Flux (github.com/fluxcd: source-controller, helm-controller), KEDA and its
HTTP add-on (github.com/kedacore), Flagger (github.com/fluxcd/flagger, artifacts/flagger/crd.yaml),
Prometheus Operator (github.com/prometheus-operator/prometheus-operator), Cilium
(github.com/cilium/cilium) and Gateway API's standard channel (github.com/kubernetes-sigs/gateway-api).
On a maintainer's machine they sit in ``crds/`` of the reference folder beside the repo
(`paths.shared_dir`), the default for ``--crds``.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import yaml

from lab_helpers import paths
from lab_helpers.manifests.schemas import Schema
from lab_helpers.manifests.schemas.packaged import DIRECTORY

# Keywords whose value is a schema, or a list or mapping of schemas: the walk follows only these,
# so a field that happens to be called "description" stays.
_CHILD = ("items", "additionalProperties", "not")
_CHILDREN = ("anyOf", "allOf", "oneOf")


def structural(node: Schema) -> Schema:
    """`node` and its children without ``description``: what validation needs, a fraction of the size."""
    out: Schema = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key == "properties":
            value = {name: structural(child) for name, child in value.items()}
        elif key in _CHILD and isinstance(value, dict):
            value = structural(value)
        elif key in _CHILDREN:
            value = [structural(child) for child in value]
        out[key] = value
    return out


def crd_records(crd_dir: Path) -> dict[str, Schema]:
    """File name -> packaged record, for every CRD in the YAML files of `crd_dir`."""
    return {f"{record['plural']}.{record['group']}.json": record for record in _records(crd_dir)}


def _records(crd_dir: Path) -> Iterator[Schema]:
    loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    for file in sorted(p for p in crd_dir.iterdir() if p.suffix in (".yaml", ".yml")):
        for crd in yaml.load_all(file.read_text(encoding="utf-8"), Loader=loader):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            yield {"group": spec["group"], "kind": spec["names"]["kind"], "plural": spec["names"]["plural"],
                   "scope": spec["scope"],
                   "versions": {version["name"]: structural(version["schema"]["openAPIV3Schema"])
                                for version in spec["versions"] if version.get("served")}}


def render(record: Schema) -> str:
    """The exact text written for one record."""
    return json.dumps(record, indent=0, separators=(",", ":"), sort_keys=True) + "\n"


def write(records: dict[str, Schema], out_dir: Path) -> None:
    """Make `out_dir` hold exactly `records`: stale files of CRDs no longer present are removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in set(p.name for p in out_dir.glob("*.json")) - set(records):
        (out_dir / stale).unlink()
    for name, record in records.items():
        (out_dir / name).write_text(render(record), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    shared = paths.shared_dir()
    parser = argparse.ArgumentParser(prog="python -m lab_helpers.manifests.schemas.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--crds", type=Path, default=shared / "crds" if shared else None,
                        help="folder of upstream CRD YAML files (default: crds/ of the reference folder)")
    parser.add_argument("--out", type=Path, default=DIRECTORY, help=f"where to write (default: {DIRECTORY})")
    args = parser.parse_args(argv)
    if args.crds is None or not args.crds.is_dir():
        parser.error(f"no CRD folder at {args.crds}: pass --crds DIR")
    records = crd_records(args.crds)
    write(records, args.out)
    print(f"wrote {len(records)} CRD schemas to {args.out}")


if __name__ == "__main__":
    main()
