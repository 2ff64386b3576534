"""The local API server answers every request in JSON: malformed ones with a 4xx naming what is wrong."""
from __future__ import annotations

import asyncio
import stat

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lab_helpers.local.apiserver import make_app
from lab_helpers.local.store import Store

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}}


def call(store: Store, method: str, path: str, **kwargs) -> tuple[int, str, object]:
    """One request against the API app: (status, content type, JSON body)."""

    async def main():
        async with TestClient(TestServer(make_app(store, TOKEN, lambda: {"ok": True}))) as client:
            response = await client.request(method, path, **kwargs)
            return response.status, response.content_type, await response.json()

    return asyncio.run(main())


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store.sqlite")


@pytest.mark.parametrize("body, status, says", [
    (b"{not json", 400, "the body is not JSON"),
    (b"[1, 2]", 400, "expected a JSON object, got a JSON array"),
    (b'"documents"', 400, "expected a JSON object, got a JSON string"),
    (b"{}", 400, "at least one document"),
    (b'{"documents": []}', 400, "at least one document"),
    (b'{"documents": {"object": {}}}', 400, "at least one document"),
    (b'{"documents": [42]}', 400, 'documents[0] must be an object with an "object" field'),
    (b'{"documents": [{"origin": "a.yaml"}]}', 400, 'documents[0] must be an object with an "object" field'),
    (b'{"documents": [{"object": [1]}]}', 422, "expected a mapping"),
], ids=["bad-json", "array", "string", "empty-object", "no-documents", "documents-not-a-list", "not-an-entry",
        "entry-without-object", "object-not-a-mapping"])
def test_a_malformed_apply_is_a_4xx_json_error_naming_what_is_wrong(store, body, status, says):
    answer = call(store, "POST", "/apply", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer[:2] == (status, "application/json")
    assert says in answer[2]["error"]
    assert store.kinds() == []  # nothing applied


def test_a_bad_label_selector_is_a_400_naming_the_pair(store):
    assert call(store, "GET", "/objects/Pod?label=app", headers=AUTH) == (
        400, "application/json", {"error": "label selector 'app': expected key=value"})
    assert call(store, "GET", "/objects/Pod?label==x", headers=AUTH)[0] == 400
    assert call(store, "GET", "/objects/Pod?label=app=iris", headers=AUTH) == (200, "application/json", {"items": []})


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/no/such/path", 404),
    ("PUT", "/apply", 405),
])
def test_unknown_paths_and_methods_answer_json(store, method, path, status):
    code, content_type, body = call(store, method, path, headers=AUTH)
    assert (code, content_type) == (status, "application/json")
    assert body["error"].startswith(f"{method} {path}: ")


def test_a_token_that_is_not_ascii_is_refused_not_a_crash(store):
    assert call(store, "GET", "/status", headers={"Authorization": "Bearer jé"})[0] == 401


def test_a_write_is_answered_after_the_loops_it_woke_have_settled(store):
    seen: list[str] = []

    async def settle() -> None:
        seen.append(f"settled with {len(store.list('Namespace'))} namespace(s)")

    store.settlers.append(settle)
    answer = call(store, "POST", "/apply", json={"documents": [{"object": NAMESPACE}]}, headers=AUTH)
    assert answer[0] == 200 and seen == ["settled with 1 namespace(s)"]
    call(store, "GET", "/objects/Namespace", headers=AUTH)
    assert len(seen) == 1  # a read does not wait


def test_the_store_file_is_readable_by_its_user_only(tmp_path):
    store = Store(tmp_path / "state" / "store.sqlite")
    store.apply(NAMESPACE)
    for path in (tmp_path / "state").iterdir():  # the database and SQLite's -wal and -shm beside it
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_a_store_left_readable_by_an_earlier_version_is_made_private(tmp_path):
    Store(tmp_path / "store.sqlite").apply(NAMESPACE)
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    Store(tmp_path / "store.sqlite")
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()} == {
        "store.sqlite": 0o600, "store.sqlite-wal": 0o600, "store.sqlite-shm": 0o600}
