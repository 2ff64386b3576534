"""The local API server's storage: identity, generation, status subresource, events, persistence."""
import pytest

from lab_helpers.errors import NotFound
from lab_helpers.local.store import Store


def cm(name="c", data="1", labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "lab", "labels": labels or {}}, "data": {"a": data}}


def test_apply_keeps_identity_and_bumps_generation_only_on_spec_change(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    first = store.apply(cm())
    assert first["metadata"]["generation"] == 1 and first["metadata"]["uid"]
    again = store.apply(cm())
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]  # nothing changed
    changed = store.apply(cm(data="2"))
    assert changed["metadata"]["uid"] == first["metadata"]["uid"] and changed["metadata"]["generation"] == 2
    relabelled = store.apply(cm(data="2", labels={"x": "y"}))
    assert relabelled["metadata"]["generation"] == 2 and relabelled["metadata"]["labels"] == {"x": "y"}


def test_status_is_written_apart_from_spec_and_survives_apply(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.apply(cm())
    store.set_status("ConfigMap", "lab", "c", {"phase": "Ready"})
    assert store.apply(cm(data="2"))["status"] == {"phase": "Ready"}
    with_status = cm(data="3")
    with_status["status"] = {"phase": "forged"}
    assert store.apply(with_status)["status"] == {"phase": "Ready"}  # a user cannot write status via apply


def test_list_by_labels_delete_and_not_found(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.apply(cm("a", labels={"app": "x"}))
    store.apply(cm("b", labels={"app": "y"}))
    assert [o["metadata"]["name"] for o in store.list("ConfigMap", "lab", {"app": "y"})] == ["b"]
    assert store.delete("ConfigMap", "lab", "a") and not store.delete("ConfigMap", "lab", "a")
    with pytest.raises(NotFound, match='ConfigMap "a" not found in namespace lab'):
        store.get("ConfigMap", "lab", "a")


def test_events_count_repeats_and_everything_persists(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    obj = store.apply(cm())
    for _ in range(3):
        store.record_event(obj, "BackOff", "restarting", "Warning")
    store.record_event(obj, "Started", "up")
    reopened = Store(tmp_path / "s.sqlite")
    events = reopened.events([("ConfigMap", "lab", "c")])
    assert [(e["reason"], e["count"]) for e in events] == [("BackOff", 3), ("Started", 1)]
    assert reopened.get("ConfigMap", "lab", "c")["metadata"]["uid"] == obj["metadata"]["uid"]
    assert int(reopened.apply(cm(data="9"))["metadata"]["resourceVersion"]) > int(obj["metadata"]["resourceVersion"])
