"""The object-graph walk and the prerequisite resolution, on a fake lab."""
import pytest

from lab_helpers import prereqs
from lab_helpers.errors import LabError
from lab_helpers.graph import describe_graph, object_graph


def obj(kind, name, uid, owner=None, ready=None):
    o = {"kind": kind, "metadata": {"name": name, "uid": uid}}
    if owner:
        o["metadata"]["ownerReferences"] = [{"uid": owner}]
    if ready is not None:
        o["status"] = {"conditions": [{"type": "Ready", "status": ready}]}
    return o


class FakeLab:
    target = "local"
    namespace = "lab"

    def __init__(self, objects):
        self.objects = objects

    def get(self, kind, name, namespace=None):
        return next(o for o in self.objects if (o["kind"], o["metadata"]["name"]) == (kind, name))

    def list(self, kind, namespace=None):
        if kind == "ReplicaSet":
            raise LabError("not served here")
        return [o for o in self.objects if o["kind"] == kind]


def test_graph_walks_owner_references_parents_first_and_skips_unserved_kinds():
    lab = FakeLab([obj("InferenceService", "iris", "i", ready="True"),
                   obj("Service", "iris-predictor", "s", owner="i"),
                   obj("Deployment", "iris-predictor", "d", owner="i"),
                   obj("Pod", "iris-predictor-x", "p", owner="d", ready="True"),
                   obj("Pod", "stranger", "q")])
    graph = object_graph(lab, "InferenceService", "iris")
    assert [(depth, o["kind"]) for depth, o in graph] == [(0, "InferenceService"), (1, "Deployment"), (2, "Pod"),
                                                         (1, "Service")]
    assert describe_graph(graph).splitlines()[2] == "    Pod/iris-predictor-x  ready=True"


def test_require_runs_dependencies_once_in_order(monkeypatch):
    ran = []
    monkeypatch.setattr(prereqs, "STEPS", {
        "a": ((), lambda lab: ran.append("a")),
        "b": (("a",), lambda lab: ran.append("b")),
        "c": (("a", "b"), lambda lab: ran.append("c")),
    })
    prereqs.require(FakeLab([]), "c", "b")
    assert ran == ["a", "b", "c"]
    with pytest.raises(ValueError, match="unknown prerequisite 'z'"):
        prereqs.require(FakeLab([]), "z")
