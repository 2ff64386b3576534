"""load_documents: sources, origins, ${VAR} substitution, namespace defaulting, YAML errors."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lab_helpers import paths
from lab_helpers.errors import ManifestError
from lab_helpers.manifests.loading import format_field_path, is_cluster_scoped, load_documents
from lab_helpers.manifests.schemas import packaged

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  uri: ${URI}
"""

TWO_DOCUMENTS = """\
# a comment before the first document
apiVersion: v1
kind: Namespace
metadata:
  name: lab
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${REPLICAS}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_file_gives_one_document_per_yaml_document_with_origins(tmp_path):
    path = write(tmp_path, "app.yaml", TWO_DOCUMENTS)

    docs = load_documents(path, variables={"REPLICAS": "2"})

    assert [doc.origin for doc in docs] == [f"{path}#1 (Namespace lab)", f"{path}#2 (Deployment web)"]
    assert docs[1].obj["spec"]["replicas"] == 2  # filled before parsing: a number, not "2"


def test_origin_is_repo_relative_inside_the_repo():
    docs = load_documents(paths.manifests_dir() / "serving" / "iris-inferenceservice.yaml",
                          variables={"NAMESPACE": "lab", "SERVICE_ACCOUNT": "default", "IRIS_STORAGE_URI": "s3://models/iris"})

    assert [doc.origin for doc in docs] == ["manifests/serving/iris-inferenceservice.yaml#1 (InferenceService iris)"]


def test_relative_path_falls_back_to_the_repo_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    docs = load_documents("manifests/serving/iris-inferenceservice.yaml",
                          variables={"NAMESPACE": "lab", "SERVICE_ACCOUNT": "default", "IRIS_STORAGE_URI": "s3://models/iris"})

    assert docs[0].obj["metadata"]["name"] == "iris"


def test_missing_path_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ManifestError, match="no such file or folder") as caught:
        load_documents("manifests/nope.yaml")
    assert caught.value.document == "manifests/nope.yaml"


def test_folder_is_read_recursively_in_path_order_yaml_files_only(tmp_path):
    write(tmp_path, "20-b.yml", "kind: ConfigMap\nmetadata: {name: b}\n")
    write(tmp_path, "10-a.yaml", "kind: ConfigMap\nmetadata: {name: a}\n")
    write(tmp_path, "30-sub/00-c.yaml", "kind: ConfigMap\nmetadata: {name: c}\n")
    write(tmp_path, "README.md", "kind: not yaml\n")
    write(tmp_path, ".hidden/x.yaml", "kind: ConfigMap\nmetadata: {name: hidden}\n")

    names = [doc.obj["metadata"]["name"] for doc in load_documents(tmp_path)]

    assert names == ["a", "b", "c"]


def test_folder_without_yaml_is_an_error(tmp_path):
    write(tmp_path, "notes.txt", "nothing")
    with pytest.raises(ManifestError, match=r"no \*\.yaml or \*\.yml files"):
        load_documents(tmp_path)


def test_empty_documents_are_skipped_but_keep_their_position_in_the_origin():
    docs = load_documents("---\n---\nkind: ConfigMap\nmetadata: {name: a}\n---\n# only a comment\n")

    assert [doc.origin for doc in docs] == ["<string>#2 (ConfigMap a)"]


def test_list_kind_is_flattened():
    source = {"apiVersion": "v1", "kind": "List", "items": [
        {"kind": "ConfigMap", "metadata": {"name": "a"}},
        {"kind": "List", "items": [{"kind": "Secret", "metadata": {"name": "b"}}]},
    ]}

    docs = load_documents(source)

    assert [doc.origin for doc in docs] == ["<dict>#1 items[0] (ConfigMap a)", "<dict>#1 items[1] items[0] (Secret b)"]


def test_list_of_dicts_and_the_callers_dicts_are_not_modified():
    given = [{"kind": "ConfigMap", "metadata": {"name": "a"}}, {"kind": "Namespace", "metadata": {"name": "n"}}]

    docs = load_documents(given, namespace="lab")

    assert [doc.origin for doc in docs] == ["<list>#1 (ConfigMap a)", "<list>#2 (Namespace n)"]
    assert "namespace" not in given[0]["metadata"]


@pytest.mark.parametrize("source, expected", [
    ("- just\n- a list\n", "expected a mapping (a Kubernetes object), got list"),
    ([{"kind": "ConfigMap"}, "text"], "expected a mapping (a Kubernetes object), got str"),
    (42, "expected a YAML file or folder path, YAML text, a dict or a list of dicts, got int"),
])
def test_non_objects_are_rejected(source, expected):
    with pytest.raises(ManifestError, match=re.escape(expected)):
        load_documents(source)


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = write(tmp_path, "broken.yaml", "kind: ConfigMap\nmetadata:\n  name: a\n   labels: {}\n")

    with pytest.raises(ManifestError) as caught:
        load_documents(path)

    assert caught.value.document == f"{path}, line 4, column 10"
    assert caught.value.expected.startswith("invalid YAML: mapping values are not allowed")


def test_duplicate_keys_are_an_error_not_last_one_wins():
    with pytest.raises(ManifestError, match="found duplicate key 'data'") as caught:
        load_documents("kind: ConfigMap\ndata: {a: '1'}\nmetadata: {name: a}\ndata: {b: '2'}\n")
    assert caught.value.document == "<string>, line 4, column 1"


def test_dates_stay_strings_as_kubernetes_expects():
    doc, = load_documents("kind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    since: 2026-08-06\n")
    assert doc.obj["metadata"]["annotations"]["since"] == "2026-08-06"


class TestSubstitution:
    def test_variables_win_over_the_environment(self, monkeypatch):
        monkeypatch.setenv("URI", "from-env")
        doc, = load_documents(CONFIGMAP, variables={"URI": "given"})
        assert doc.obj["data"]["uri"] == "given"

    def test_environment_is_the_fallback(self, monkeypatch):
        monkeypatch.setenv("URI", "s3://from-env")
        doc, = load_documents(CONFIGMAP)
        assert doc.obj["data"]["uri"] == "s3://from-env"

    def test_unset_variable_names_document_field_and_variable(self, monkeypatch):
        monkeypatch.delenv("REPLICAS", raising=False)
        with pytest.raises(ManifestError) as caught:
            load_documents(TWO_DOCUMENTS)
        error = caught.value
        assert (error.document, error.path) == ("<string>#2 (Deployment web)", "spec.replicas")
        assert "variable ${REPLICAS} is not set" in error.expected

    def test_unset_variable_in_a_dict(self, monkeypatch):
        monkeypatch.delenv("URI", raising=False)
        source = {"kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"uri": "${URI}"}}
        with pytest.raises(ManifestError) as caught:
            load_documents(source)
        assert (caught.value.document, caught.value.path) == ("<dict>#1 (ConfigMap settings)", "data.uri")

    def test_placeholder_only_in_a_comment_needs_no_value(self, monkeypatch):
        monkeypatch.delenv("UNUSED", raising=False)
        doc, = load_documents("# set ${UNUSED} one day\n" + CONFIGMAP, variables={"URI": "x"})
        assert doc.obj["data"]["uri"] == "x"

    def test_only_the_braced_form_is_a_placeholder(self, monkeypatch):
        monkeypatch.setenv("HOME_DIR", "/home/lab")
        text = ("kind: ConfigMap\nmetadata: {name: a}\n"
                "data:\n  a: $HOME_DIR\n  b: $${HOME_DIR}\n  c: ${HOME_DIR:-x}\n  d: ${HOME_DIR}\n")
        doc, = load_documents(text)
        assert doc.obj["data"] == {"a": "$HOME_DIR", "b": "$${HOME_DIR}", "c": "${HOME_DIR:-x}", "d": "/home/lab"}

    def test_file_and_dict_give_identical_documents(self, tmp_path):
        text = (paths.manifests_dir() / "serving" / "iris-inferenceservice.yaml").read_text()
        variables = {"NAMESPACE": "lab", "SERVICE_ACCOUNT": "default", "IRIS_STORAGE_URI": "s3://models/iris/1"}

        from_file = load_documents(write(tmp_path, "iris.yaml", text), variables=variables)
        from_dict = load_documents(yaml.safe_load(text), variables=variables)

        assert from_file[0].obj == from_dict[0].obj
        assert from_dict[0].obj["spec"]["predictor"]["model"]["storageUri"] == "s3://models/iris/1"
        assert from_dict[0].obj["metadata"]["namespace"] == "lab"


class TestNamespaceDefaulting:
    SOURCE = [
        {"kind": "InferenceService", "metadata": {"name": "iris"}},
        {"kind": "ConfigMap", "metadata": {"name": "kept", "namespace": "other"}},
        {"kind": "ClusterServingRuntime", "metadata": {"name": "runtime"}},
        {"kind": "Namespace", "metadata": {"name": "lab"}},
        {"kind": "Secret"},
    ]

    def test_namespaced_kinds_without_one_get_it(self):
        docs = load_documents(self.SOURCE, namespace="lab")
        assert [doc.obj["metadata"].get("namespace") for doc in docs] == ["lab", "other", None, None, "lab"]

    def test_no_namespace_given_leaves_objects_alone(self):
        docs = load_documents(self.SOURCE)
        assert [doc.obj["metadata"].get("namespace") for doc in docs[:1] + docs[2:4]] == [None, None, None]


def test_scope_agrees_with_the_crds():
    crds = packaged.load(packaged.DIRECTORY).by_kind.values()
    assert crds
    for crd in crds:
        assert is_cluster_scoped(crd.kind) == (crd.scope == "Cluster"), crd.kind


def test_core_scopes():
    assert is_cluster_scoped("Namespace") and is_cluster_scoped("ClusterRoleBinding")
    assert not is_cluster_scoped("Deployment") and not is_cluster_scoped("InferenceService")


@pytest.mark.parametrize("parts, expected", [
    (["spec", "predictor", "model", "modelFormat", "name"], "spec.predictor.model.modelFormat.name"),
    (["spec", "containers", 0, "env"], "spec.containers[0].env"),
    (["metadata", "annotations", "serving.kserve.io/deploymentMode"],
     'metadata.annotations["serving.kserve.io/deploymentMode"]'),
    ([], ""),
])
def test_format_field_path(parts, expected):
    assert format_field_path(parts) == expected
