"""validate / validate_documents: errors name the document, the field path and what was expected."""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest

from lab_helpers import paths
from lab_helpers.errors import ManifestError
from lab_helpers.manifests.loading import Document, load_documents
from lab_helpers.manifests.schemas import builtin, generate, packaged
from lab_helpers.manifests.validation import validate, validate_documents

IRIS = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "iris", "namespace": "lab",
                 "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
    "spec": {"predictor": {"model": {
        "modelFormat": {"name": "mlflow"},
        "protocolVersion": "v2",
        "storageUri": "s3://models/iris",
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
    }}},
}


def error_for(obj: dict[str, Any], origin: str = "test#1") -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        validate(obj, origin)
    assert caught.value.document == origin
    return caught.value


def changed(base: dict[str, Any], path: str | tuple[str, ...], value: Any) -> dict[str, Any]:
    """Copy of `base` with `path` (dotted, or a tuple of keys) set to `value`; DELETE removes it."""
    obj = copy.deepcopy(base)
    *parents, last = path.split(".") if isinstance(path, str) else path
    node = obj
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return obj


DELETE = object()


class TestCrdKinds:
    def test_valid_inference_service_passes(self):
        validate(IRIS, "iris#1")

    @pytest.mark.parametrize("path, value, field, expected", [
        ("spec.predictor.model.modelFormat.name", DELETE,
         "spec.predictor.model.modelFormat.name", "required field is missing"),
        ("spec.predictor.minReplicas", "1",
         "spec.predictor.minReplicas", "expected an integer, got the string '1'"),
        ("spec.predictor.scaleMetric", "qps",  # the KPA doc's value, not in the CRD enum
         "spec.predictor.scaleMetric", "expected one of 'cpu', 'memory', 'concurrency', 'rps', got the string 'qps'"),
        ("spec.predictor.model.protocolversion", "v2",
         "spec.predictor.model.protocolversion", "unknown field (did you mean 'protocolVersion'?)"),
        ("spec.predictor.model.resources.limits.memory", "1GB",
         "spec.predictor.model.resources.limits.memory",
         "expected a quantity such as 2, 500m, 512Mi or 1Gi, got the string '1GB'"),
        ("spec.predictor.model.resources.limits.memory", [1],
         "spec.predictor.model.resources.limits.memory", "expected an integer or a string, got a list"),
        ("metadata.name", "Iris_1",
         "metadata.name", "expected a DNS-1035 label: lowercase letters, digits and '-', starting with a letter"),
        (("metadata", "annotations", "serving.kserve.io/deploymentMode"), True,
         'metadata.annotations["serving.kserve.io/deploymentMode"]',
         'expected a string, got true (quote it in YAML: "true")'),
        ("metadata.lables", {"a": "b"}, "metadata.lables", "unknown field (did you mean 'labels'?)"),
        ("spec", "predictor", "spec", "expected a mapping of fields, got the string 'predictor'"),
    ])
    def test_invalid_field_is_named_with_what_was_expected(self, path, value, field, expected):
        error = error_for(changed(IRIS, path, value))
        assert error.path == field
        assert error.expected.startswith(expected)

    def test_unserved_version_lists_the_served_ones(self):
        error = error_for(changed(IRIS, "apiVersion", "serving.kserve.io/v1alpha1"))
        assert error.path == "apiVersion"
        assert error.expected == ("serving.kserve.io/v1alpha1 is not served for InferenceService; "
                                  "served: serving.kserve.io/v1beta1")

    def test_flux_dropped_versions_are_reported(self):
        release = {"apiVersion": "helm.toolkit.fluxcd.io/v2beta1", "kind": "HelmRelease",
                   "metadata": {"name": "kserve"}, "spec": {"interval": "5m"}}
        assert error_for(release).expected.endswith("served: helm.toolkit.fluxcd.io/v2")

    def test_unknown_kind_in_a_known_group(self):
        error = error_for(changed(IRIS, "kind", "InferenceSvc"))
        assert error.path == "kind"
        assert error.expected.startswith("no schema for kind InferenceSvc in apiVersion serving.kserve.io/v1beta1")
        assert "InferenceService" in error.expected

    def test_kinds_of_a_multi_document_crd_file(self):
        template = {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                    "metadata": {"name": "error-rate"},
                    "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090"},
                             "query": "sum(rate(x[1m]))"}}
        validate(template, "metric#1")
        error = error_for(changed(template, "spec.provider.type", "prometheus2"))
        assert error.path == "spec.provider.type" and error.expected.startswith("expected one of")

    def test_unknown_group_gets_the_structural_check(self):
        validate({"apiVersion": "widgets.example.com/v1", "kind": "Widget",
                  "metadata": {"name": "route"}, "spec": {"anything": ["goes"]}}, "route#1")

    def test_validation_is_fast_once_warm(self):
        validate(IRIS, "warm-up")
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            validate(IRIS, "timed")
            timings.append(time.perf_counter() - started)
        assert min(timings) < 0.050


class TestCrdTranslation:
    """Kubernetes' schema dialect, on a small CRD folder of our own."""

    CRDS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.lab}
spec:
  group: example.lab
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v0
    served: false
    storage: false
    schema: {openAPIV3Schema: {type: object}}
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            required: [size]
            properties:
              size: {x-kubernetes-int-or-string: true}
              note: {type: string, nullable: true}
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
                properties: {known: {type: integer}}
              target:
                type: object
                properties: {port: {type: integer}, name: {type: string}}
                anyOf:
                - required: [port]
                  properties: {port: {minimum: 1}}
                - required: [name]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.lab}
spec:
  group: example.lab
  names: {kind: Gadget, plural: gadgets}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {colour: {type: string, enum: [red, blue]}}}
"""
    WIDGET = {"apiVersion": "example.lab/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"size": 3, "note": None, "extra": {"known": 1, "anything": {"x": 1}},
                       "target": {"port": 8080}}}

    @pytest.fixture(autouse=True)
    def own_crds(self, tmp_path: Path, monkeypatch):
        """Packaged as the generator packages upstream CRDs, and used instead of the package's own."""
        (tmp_path / "crds").mkdir()
        (tmp_path / "crds" / "example.lab.yaml").write_text(self.CRDS)
        generate.write(generate.crd_records(tmp_path / "crds"), tmp_path / "packaged")
        monkeypatch.setattr(packaged, "DIRECTORY", tmp_path / "packaged")

    def test_int_or_string_nullable_preserved_fields_and_junctors(self):
        validate(self.WIDGET, "widget#1")
        validate(changed(self.WIDGET, "spec.size", "50%"), "widget#1")

    @pytest.mark.parametrize("path, value, field, expected", [
        ("spec.size", [1], "spec.size", "expected an integer or a string, got a list"),
        ("spec.size", DELETE, "spec.size", "required field is missing"),
        ("spec.extra.known", "one", "spec.extra.known", "expected an integer, got the string 'one'"),
        ("spec.colour", "red", "spec.colour", "unknown field (fields allowed here: extra, note, size, target)"),
        ("spec.target.port", 0, "spec.target.port", "expected a number >= 1, got 0"),
    ])
    def test_errors(self, path, value, field, expected):
        error = error_for(changed(self.WIDGET, path, value))
        assert (error.path, error.expected) == (field, expected)

    def test_second_document_of_a_crd_file(self):
        gadget = {"apiVersion": "example.lab/v1", "kind": "Gadget", "metadata": {"name": "g"},
                  "spec": {"colour": "green"}}
        error = error_for(gadget)
        assert (error.path, error.expected) == ("spec.colour", "expected one of 'red', 'blue', got the string 'green'")

    def test_unserved_version(self):
        error = error_for(changed(self.WIDGET, "apiVersion", "example.lab/v0"))
        assert error.expected == "example.lab/v0 is not served for Widget; served: example.lab/v1"


class TestWithoutReferenceData:
    """A clone has no reference folder beside it: the packaged schemas check CRD kinds all the same."""

    MISSPELT = changed(changed(IRIS, "spec.predictor.model.storageUri", DELETE),
                       "spec.predictor.model.storageUrl", "s3://models/iris")

    @pytest.fixture(autouse=True, params=["absent", "as laid"])
    def reference_folder(self, request, tmp_path: Path, monkeypatch):
        if request.param == "absent":
            monkeypatch.setenv("LAB_SHARED_DIR", str(tmp_path / "absent"))
            assert paths.shared_dir() is None
        packaged.load.cache_clear()  # read afresh under this setting, not from an earlier test

    def test_misspelt_storage_uri_is_rejected_the_same(self):
        error = error_for(self.MISSPELT)
        assert (error.path, error.expected) == ("spec.predictor.model.storageUrl",
                                                "unknown field (did you mean 'storageUri'?)")

    def test_field_types_are_checked(self):
        error = error_for(changed(IRIS, "spec.predictor.minReplicas", "not a number"))
        assert error.path == "spec.predictor.minReplicas"


class TestCoreKinds:
    DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "web", "image": "nginx",
                                                                 "ports": [{"containerPort": 80}]}]}}}}

    def test_valid_objects_pass(self):
        validate(self.DEPLOYMENT, "web#1")
        validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "creationTimestamp": None},
                  "data": {"port": "8080"}}, "c#1")
        validate({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                  "metadata": {"name": "reader"}, "rules": []}, "role#1")

    @pytest.mark.parametrize("obj, field, expected", [
        (changed(DEPLOYMENT, "spec.template.spec.containers.0.image", DELETE),
         "spec.template.spec.containers[0].image", "required field is missing"),
        (changed(DEPLOYMENT, "spec.replicas", -1), "spec.replicas", "expected a number >= 0, got -1"),
        (changed(DEPLOYMENT, "apiVersion", "apps/v1beta1"), "apiVersion",
         "apps/v1beta1 is not served for Deployment; served: apps/v1"),
        (changed(DEPLOYMENT, "specs", {}), "specs", "unknown field (did you mean 'spec'?)"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"port": 8080}},
         "data.port", 'expected a string, got the number 8080 (quote it in YAML: "8080")'),
        ({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "drift"},
          "spec": {"template": {"spec": {"containers": [{"name": "d", "image": "x"}], "restartPolicy": "Always"}}}},
         "spec.template.spec.restartPolicy", "expected one of 'Never', 'OnFailure', got the string 'Always'"),
        ({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "drift"}, "spec": {"jobTemplate": {}}},
         "spec.schedule", "required field is missing"),
        ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
          "spec": {"ports": [{"port": 80, "targetPort": {"number": 8080}}]}},
         "spec.ports[0].targetPort", "expected an integer or a string, got a mapping"),
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab.one"}},
         "metadata.name", "expected a DNS-1123 label"),
        ({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
          "spec": {"podSelector": {}, "policyTypes": ["Inbound"]}},
         "spec.policyTypes[0]", "expected one of 'Ingress', 'Egress'"),
        ({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "in"},
          "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {"service": {"name": "s"}}}]}}]}},
         "spec.rules[0].http.paths[0].pathType", "required field is missing"),
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Creds"}},
         "metadata.name", "expected a DNS-1123 subdomain"),
        # Kubernetes' own schemas are complete and strict: any field of any kind is checked.
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
          "spec": {"containers": [{"name": "c", "image": "x", "resource": {}}]}},
         "spec.containers[0].resource", "unknown field (did you mean 'resources'?)"),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
          "spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": {"memory": "1GB"}}}]}},
         "spec.containers[0].resources.limits.memory", "expected a quantity such as 2, 500m, 512Mi or 1Gi"),
        ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": "3"}},
         "spec.maxReplicas", "expected an integer, got the string '3'"),
        ({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}, "automountToken": False},
         "automountToken", "unknown field (did you mean 'automountServiceAccountToken'?)"),
        ({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
          "metadata": {"name": "widgets.example.lab"}, "spec": {"group": "example.lab"}},
         "spec.names", "required field is missing"),
        ({"kind": "Secret", "metadata": {"name": "creds"}}, "apiVersion", "required field is missing"),
        ({"apiVersion": "v1", "kind": "", "metadata": {"name": "creds"}}, "kind",
         "expected a non-empty string, got the string ''"),
    ])
    def test_errors(self, obj, field, expected):
        error = error_for(obj)
        assert error.path == field and error.expected.startswith(expected)

    def test_schemas_are_of_the_pinned_kubernetes_release(self):
        from kubernetes_validate.utils import all_versions

        assert builtin.K8S_VERSION in all_versions()
        assert set(builtin.versions("autoscaling", "HorizontalPodAutoscaler")) == {"v1", "v2"}

    def test_not_a_mapping(self):
        assert error_for(["a"]).expected == "expected a mapping (a Kubernetes object), got a list"


class TestValidateDocuments:
    def test_all_valid_returns_none(self):
        docs = load_documents([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}}])
        assert validate_documents(docs) is None

    def test_first_invalid_document_is_raised_and_the_others_are_noted(self):
        text = """\
apiVersion: v1
kind: Namespace
metadata: {name: lab}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {replicas: 2}
---
apiVersion: v1
kind: Secret
metadata: {name: Creds}
"""
        docs = load_documents(text, namespace="lab")
        with pytest.raises(ManifestError) as caught:
            validate_documents(docs)
        error = caught.value
        assert (error.document, error.path) == ("<string>#2 (ConfigMap settings)", "data.replicas")
        assert "nothing from this apply was applied" in str(error)
        assert error.__notes__ == ["also invalid: <string>#3 (Secret Creds): field metadata.name: expected a "
                                   "DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and "
                                   "ending with a letter or digit, got the string 'Creds'"]

    def test_accepts_documents_built_by_hand(self):
        with pytest.raises(ManifestError, match="my-origin"):
            validate_documents([Document({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "my-origin")])
