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


def test_an_older_store_is_migrated_once_and_a_new_one_starts_current(tmp_path):
    from lab_helpers.local.migrations import CURRENT, SCHEMA_KEY, migrate

    old = Store(tmp_path / "old.sqlite")
    old.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "lab"},
               "spec": {"containers": [{"name": "kserve-container"}]}})
    old.set_status("Pod", "lab", "p", {"phase": "Running", "lab": {"pid": 42, "port": 41001, "createTime": 1.5}})
    assert migrate(old) == ["_pod_status_v2"]
    lab = old.get("Pod", "lab", "p")["status"]["lab"]
    assert lab == {"ports": {"8080": 41001}, "containers": {"kserve-container": {"pid": 42, "createTime": 1.5}}}
    assert migrate(old) == [] and old.meta_value(SCHEMA_KEY) == str(CURRENT)
    fresh = Store(tmp_path / "new.sqlite")
    assert migrate(fresh) == [] and fresh.meta_value(SCHEMA_KEY) == str(CURRENT)


def test_an_apply_that_leaves_replicas_out_keeps_the_scaled_value(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "lab"},
              "spec": {"template": {}}}
    assert store.apply(deploy)["spec"]["replicas"] == 1  # defaulted on create
    store.scale("Deployment", "lab", "d", 4)
    assert store.apply({**deploy, "spec": {"template": {"x": 1}}})["spec"]["replicas"] == 4
    assert store.apply({**deploy, "spec": {"template": {}, "replicas": 2}})["spec"]["replicas"] == 2
