"""The packaged CRD schemas: what the generator writes, and that the package holds its current output."""
from __future__ import annotations

from pathlib import Path

import pytest

from lab_helpers import paths
from lab_helpers.manifests.schemas import generate, packaged

# One CRD in flow style, plus a document of another kind that the generator must pass over.
CRD = """\
{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: notes.example.lab},
 spec: {group: example.lab, names: {kind: Note, plural: notes}, scope: Cluster, versions: [
  {name: v0, served: false, storage: false, schema: {openAPIV3Schema: {type: object}}},
  {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {description: A note., type: object}}}]}}
---
kind: ConfigMap
"""


def test_descriptions_are_stripped_but_a_field_called_description_stays():
    schema = {"description": "A note.", "type": "object", "properties": {
        "description": {"description": "The field called description.", "type": "string"},
        "tags": {"type": "array", "items": {"description": "One tag.", "type": "string"}},
        "size": {"anyOf": [{"description": "A count.", "type": "integer"}, {"type": "string"}]}}}
    assert generate.structural(schema) == {"type": "object", "properties": {
        "description": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
        "size": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}}


def test_one_record_per_crd_with_its_served_versions(tmp_path: Path):
    (tmp_path / "notes.yaml").write_text(CRD)
    assert generate.crd_records(tmp_path) == {"notes.example.lab.json": {
        "group": "example.lab", "kind": "Note", "plural": "notes", "scope": "Cluster",
        "versions": {"v1": {"type": "object"}}}}


def test_write_is_byte_stable_and_drops_stale_files(tmp_path: Path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.yaml").write_text(CRD)
    out = tmp_path / "out"
    out.mkdir()
    (out / "gone.example.lab.json").write_text("{}")
    records = generate.crd_records(tmp_path / "src")
    generate.write(records, out)
    first = (out / "notes.example.lab.json").read_bytes()
    generate.write(records, out)
    assert [p.name for p in out.iterdir()] == ["notes.example.lab.json"]
    assert (out / "notes.example.lab.json").read_bytes() == first
    assert packaged.load(out).by_kind[("example.lab", "Note")].name == "notes.example.lab"


def test_packaged_schemas_are_the_generator_output_for_the_upstream_crds(tmp_path: Path):
    shared = paths.shared_dir()
    if shared is None or not (shared / "crds").is_dir():
        pytest.skip("the upstream CRD files are not laid beside the repo (only maintainers have them)")
    generate.main(["--crds", str(shared / "crds"), "--out", str(tmp_path)])
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    shipped = {p.name: p.read_bytes() for p in packaged.DIRECTORY.glob("*.json")}
    assert sorted(fresh) == sorted(shipped), "run: python -m lab_helpers.manifests.schemas.generate"
    stale = [name for name in fresh if fresh[name] != shipped[name]]
    assert not stale, f"out of date: {stale}; run: python -m lab_helpers.manifests.schemas.generate"
