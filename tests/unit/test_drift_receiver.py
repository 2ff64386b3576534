"""The drift receiver: binary-mode CloudEvents in, 400 + a counter for anything else, windows of instances out."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lab_helpers.drift.receiver import (
    REQUEST_TYPE, RESPONSE_TYPE, STORE_FILE, EventStore, inputs_frame, make_app, predictions_of, read_window)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
V1_REQUEST = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.8, 2.8, 4.8, 1.4]]}
V1_RESPONSE = {"predictions": [0, 1]}
V2_REQUEST = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                          "data": [5.1, 3.5, 1.4, 0.2, 6.8, 2.8, 4.8, 1.4]}]}
V2_RESPONSE = {"outputs": [{"name": "output-0", "shape": [2], "datatype": "INT64", "data": [0, 1]}]}


def headers(event_id: str, kind: str, at: str = "2026-12-01T12:00:01.123456789Z", **extra: str) -> dict[str, str]:
    return {"Ce-Id": event_id, "Ce-Type": kind, "Ce-Source": "iris-predictor-abc", "Ce-Specversion": "1.0",
            "Ce-Time": at, "Ce-Inferenceservicename": "iris", "Ce-Namespace": "lab", "Ce-Component": "predictor",
            "Ce-Endpoint": "", "Ce-Metadata": "{}", "Content-Type": "application/json", **extra}


def with_receiver(tmp_path: Path, script):
    """Run `script(client)` against a receiver storing under tmp_path; returns what it returns."""
    async def main():
        client = TestClient(TestServer(make_app(EventStore(tmp_path / STORE_FILE)), host="127.0.0.1"))
        await client.start_server()
        try:
            return await script(client)
        finally:
            await client.close()

    return asyncio.run(main())


async def post(client: TestClient, head: dict[str, str], body: object) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post("/", data=data, headers=head)
    return response.status, await response.json()


async def metrics(client: TestClient) -> str:
    return await (await client.get("/metrics")).text()


def test_a_request_and_its_response_become_rows_of_inputs_and_predictions(tmp_path):
    async def script(client):
        assert (await post(client, headers("a", REQUEST_TYPE), V1_REQUEST))[0] == 200
        assert (await post(client, headers("a", RESPONSE_TYPE, "2026-12-01T12:00:01.2Z"), V1_RESPONSE))[0] == 200
        assert (await post(client, headers("a", RESPONSE_TYPE), V1_RESPONSE))[0] == 200  # a retry: stored once
        return await metrics(client)

    text = with_receiver(tmp_path, script)
    assert 'drift_receiver_events_stored_total{type="request"} 1.0' in text
    frame = read_window(tmp_path, "iris", T0, T0.replace(minute=1))
    assert list(frame.columns) == ["id", "time", "feature_0", "feature_1", "feature_2", "feature_3", "prediction"]
    assert frame["prediction"].tolist() == [0, 1] and frame["feature_0"].tolist() == [5.1, 6.8]
    assert set(frame["id"]) == {"a"}
    assert frame["time"].iloc[0] == datetime(2026, 12, 1, 12, 0, 1, 123456, tzinfo=timezone.utc)


def test_the_window_bounds_and_the_namespace_select_events(tmp_path):
    async def script(client):
        await post(client, headers("early", REQUEST_TYPE, "2026-12-01T11:59:59Z"), V1_REQUEST)
        await post(client, headers("in", REQUEST_TYPE, "2026-12-01T12:00:00Z"), V1_REQUEST)
        await post(client, headers("late", REQUEST_TYPE, "2026-12-01T12:01:00Z"), V1_REQUEST)
        await post(client, headers("other", REQUEST_TYPE, "2026-12-01T12:00:30Z", **{"Ce-Namespace": "b"}),
                   V1_REQUEST)

    with_receiver(tmp_path, script)
    until = T0.replace(minute=1)
    assert set(read_window(tmp_path, "iris", T0, until, namespace="lab")["id"]) == {"in"}
    assert set(read_window(tmp_path / STORE_FILE, "iris", T0, until)["id"]) == {"in", "other"}
    assert read_window(tmp_path, "iris", T0, until)["prediction"].isna().all()  # mode request: no predictions
    empty = read_window(tmp_path, "iris", until.replace(hour=13), until.replace(hour=14))
    assert empty.empty and list(empty.columns) == ["id", "time", "prediction"]


def test_v2_tensors_give_the_same_rows():
    assert inputs_frame(V2_REQUEST).to_numpy().tolist() == V1_REQUEST["instances"]
    assert list(inputs_frame(V2_REQUEST).columns) == [f"input-0_{j}" for j in range(4)]
    assert predictions_of(V2_RESPONSE) == [0, 1]
    probabilities = {"outputs": [{"name": "p", "shape": [1, 3], "datatype": "FP64", "data": [0.1, 0.2, 0.7]}]}
    assert predictions_of(probabilities) == [[0.1, 0.2, 0.7]]
    assert inputs_frame({"instances": [{"a": 1, "b": 2}]}).to_dict("records") == [{"a": 1, "b": 2}]


def test_a_response_alone_still_gives_predictions_and_a_mismatched_exchange_is_left_out(tmp_path):
    async def script(client):
        await post(client, headers("only", RESPONSE_TYPE), V2_RESPONSE)
        await post(client, headers("bad", REQUEST_TYPE), V1_REQUEST)
        await post(client, headers("bad", RESPONSE_TYPE), {"predictions": [1]})

    with_receiver(tmp_path, script)
    frame = read_window(tmp_path, "iris", T0, T0.replace(minute=1))
    assert frame["id"].tolist() == ["only", "only"] and frame["prediction"].tolist() == [0, 1]


@pytest.mark.parametrize(("change", "body", "reason", "says"), [
    ({"Ce-Id": None}, V1_REQUEST, "missing_attribute", "Ce-Id"),
    ({"Ce-Inferenceservicename": None, "Ce-Namespace": None}, V1_REQUEST, "missing_attribute",
     "Ce-Inferenceservicename, Ce-Namespace"),
    ({"Ce-Specversion": "0.3"}, V1_REQUEST, "specversion", "only 1.0"),
    ({"Ce-Type": "com.example.other"}, V1_REQUEST, "unknown_type", "not an inference event"),
    ({"Ce-Time": "yesterday"}, V1_REQUEST, "bad_time", "RFC 3339"),
    ({"Content-Type": "application/cloudevents+json"}, V1_REQUEST, "structured_mode", "binary mode"),
    ({}, b"\xff\x00 not json", "payload_not_json", "not a JSON"),
])
def test_malformed_events_get_a_400_naming_the_problem_and_the_service_keeps_running(
        tmp_path, change, body, reason, says):
    head = {k: v for k, v in {**headers("x", REQUEST_TYPE), **change}.items() if v is not None}

    async def script(client):
        status, answer = await post(client, head, body)
        good = (await post(client, headers("ok", REQUEST_TYPE), V1_REQUEST))[0]
        return status, answer, good, await metrics(client)

    status, answer, good, text = with_receiver(tmp_path, script)
    assert status == 400 and answer["reason"] == reason and says in answer["error"]
    assert f'drift_receiver_events_rejected_total{{reason="{reason}"}} 1.0' in text
    assert good == 200


def test_a_failing_store_answers_500_and_counts(tmp_path):
    store = EventStore(tmp_path / STORE_FILE)
    store.db.close()  # any later write raises sqlite3.ProgrammingError, a sqlite3.Error

    async def main():
        client = TestClient(TestServer(make_app(store), host="127.0.0.1"))
        await client.start_server()
        try:
            status, answer = await post(client, headers("a", REQUEST_TYPE), V1_REQUEST)
            return status, answer, await metrics(client)
        finally:
            await client.close()

    status, answer, text = asyncio.run(main())
    assert status == 500 and "store failed" in answer["error"]
    assert "drift_receiver_store_errors_total 1.0" in text


def test_events_endpoint_serves_a_window_and_read_window_reads_it_over_http(tmp_path):
    async def script(client):
        await post(client, headers("a", REQUEST_TYPE), V2_REQUEST)
        await post(client, headers("a", RESPONSE_TYPE), V2_RESPONSE)
        bad = await client.get("/events", params={"isvc": "iris"})
        url = str(client.make_url("/"))
        frame = await asyncio.to_thread(read_window, url, "iris", T0, T0.replace(minute=1), "lab")
        return bad.status, frame

    status, frame = with_receiver(tmp_path, script)
    assert status == 400
    assert frame["prediction"].tolist() == [0, 1] and frame["input-0_3"].tolist() == [0.2, 1.4]


def test_a_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no event store"):
        read_window(tmp_path / "nothing.sqlite", "iris", T0, T0)
