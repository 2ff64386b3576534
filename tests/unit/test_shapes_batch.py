"""The batch scorer: CSV in and out, bounded concurrency, batches in order, failures named by rows; files beside."""
import asyncio
import json

import httpx
import pytest

from lab_helpers.shapes import batch_scorer
from lab_helpers.shapes.batch_scorer import format_rows, parse_rows, score_rows
from lab_helpers.shapes.objects import read_bytes, scored_uri, write_bytes

ROWS = [{"petal_width_mm": float(i)} for i in range(7)]


class FakeService:
    """Labels each record by its value; records the batch sizes and the most requests in flight at once."""

    def __init__(self, fail_on: float | None = None):
        self.sizes, self.in_flight, self.most, self.fail_on = [], 0, 0, fail_on

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        records = json.loads(request.content)["instances"]
        self.sizes.append(len(records))
        if any(r["petal_width_mm"] == self.fail_on for r in records):
            return httpx.Response(503, json={"error": "no ready backend"})
        return httpx.Response(200, json={"predictions": [f"l{int(r['petal_width_mm'])}" for r in records]})


def test_rows_are_scored_in_batches_in_order_with_at_most_concurrency_in_flight():
    service = FakeService()
    labels = asyncio.run(score_rows(ROWS, "http://svc", "iris", batch_size=2, concurrency=2,
                                    transport=httpx.MockTransport(service)))
    assert labels == [f"l{i}" for i in range(7)]
    assert sorted(service.sizes) == [1, 2, 2, 2] and service.most == 2


def test_a_failed_batch_names_its_rows_and_the_services_answer():
    with pytest.raises(batch_scorer.ScoringError, match=r"rows 4-5: iris at http://svc answered 503: no ready backend"):
        asyncio.run(score_rows(ROWS, "http://svc", "iris", batch_size=2, concurrency=3,
                               transport=httpx.MockTransport(FakeService(fail_on=5.0))))


def test_bad_batch_parameters_are_refused():
    with pytest.raises(ValueError, match="batch size and concurrency must be >= 1"):
        asyncio.run(score_rows(ROWS, "http://svc", "iris", batch_size=0, concurrency=1))


def test_csv_round_trip_and_bad_csv():
    assert parse_rows(format_rows(ROWS)) == ROWS
    assert format_rows(ROWS[:1], ["setosa"]) == b"petal_width_mm,label\n0.0,setosa\n"
    with pytest.raises(ValueError, match="line 3: every field must be a number"):
        parse_rows(b"a\n1\nx\n")
    with pytest.raises(ValueError, match="a header and no rows"):
        parse_rows(b"a\n")


def test_results_go_beside_the_input(tmp_path):
    assert scored_uri("s3://bucket/batches/rows.csv") == "s3://bucket/batches/rows.scored.csv"
    uri = (tmp_path / "in" / "rows.csv").as_uri()
    write_bytes(uri, b"x\n1\n")
    assert read_bytes(uri) == b"x\n1\n"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_bytes((tmp_path / "none.csv").as_uri())
    with pytest.raises(ValueError, match="use a file:// or s3:// URI"):
        read_bytes("/plain/path.csv")


def test_the_job_program_exits_1_with_one_line_naming_the_input(tmp_path, capsys):
    missing = (tmp_path / "rows.csv").as_uri()
    assert batch_scorer.main(["--input", missing, "--url", "http://svc", "--model", "iris"]) == 1
    assert capsys.readouterr().err.strip() == f"batch scoring of {missing} failed: batch input {missing} does not exist"
