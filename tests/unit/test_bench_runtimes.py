"""`bench runtimes`: wrk's output read right, the ratios side by side, the headline line last."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from lab_helpers.bench.runtimes import Cell, format_report, null_response, parse_wrk, ratios, table, wrk_script

WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:4000/v2/models/digits/infer
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  400.00us   9.10ms   80.00%
    Req/Sec     5.40k   300.00     6.00k    70.00%
  Latency Distribution
     50%    1.43ms
     75%    1.60ms
     90%    1.90ms
     99%  850.00us
  16200 requests in 3.00s, 4.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   5400.00
Transfer/sec:      1.37MB
"""


def test_wrk_output_is_read_with_units_and_every_kind_of_error():
    assert parse_wrk(WRK_OUTPUT) == {"requests": 16200, "errors": 7, "seconds": 3.0, "p50_ms": 1.43, "p99_ms": 0.85}
    with pytest.raises(RuntimeError, match="wrk printed no result"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_the_wrk_script_posts_the_body_with_the_host_only_through_the_gateway():
    body = b'{"inputs": [{"name": "input", "data": [1.0]}]}'
    direct = wrk_script(body, None)
    assert 'wrk.method = "POST"' in direct and f"wrk.body = [==[{body.decode()}]==]" in direct
    assert "Host" not in direct
    assert 'wrk.headers["Host"] = "digits.example.com"' in wrk_script(body, "digits.example.com")
    assert 'wrk.headers["x-null-bytes"] = "900"' in wrk_script(body, None, {"x-null-bytes": "900"})


@pytest.mark.parametrize("size", [0, 34, 47, 14592])
def test_the_null_backend_answers_json_as_large_as_asked(size):
    head, body = null_response(size).split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and f"Content-Length: {len(body)}".encode() in head
    assert len(body) == max(size, 34) and json.loads(body)["outputs"] == []


def _cells(kserve: float, triton: float, triton_gateway: float, ceiling: float) -> list[Cell]:
    def cell(runtime, path, rps, rows_per_execution=None):
        return Cell(runtime, path, 1, 8, int(rps * 2), 0, 2.0, 1.0, 2.0,
                    {runtime: 100.0, "loadgen": 10.0, **({"gateway": 50.0} if path == "gateway" else {})},
                    rows_per_execution)
    return [cell("kserve-python", "direct", kserve), cell("triton", "direct", triton, 3.5),
            cell("kserve-python", "gateway", kserve * 0.9), cell("triton", "gateway", triton_gateway, 1.5),
            cell("null", "gateway", ceiling)]


def test_ratios_put_triton_beside_kserve_and_beside_the_gateway_ceiling():
    frame = table(_cells(kserve=500, triton=6000, triton_gateway=1800, ceiling=2000))
    row = ratios(frame).iloc[0]
    assert row["triton/kserve direct"] == pytest.approx(12.0)
    assert row["triton/kserve gateway"] == pytest.approx(4.0)
    assert row["triton gateway/ceiling"] == pytest.approx(0.9)
    assert list(frame["rows_per_s"]) == list(frame["req_per_s"])  # batch 1


def test_the_report_ends_with_the_headline_and_says_whether_the_goals_are_met():
    report = format_report(table(_cells(kserve=1000, triton=9000, triton_gateway=1500, ceiling=2000)))
    lines = report.splitlines()
    assert lines[-1] == "triton/kserve-python at batch 1, 8 clients, direct: 9.0 x"
    assert "direct: NOT met" in lines[-2] and "gateway's ceiling: NOT met (0.75)" in lines[-2]
    assert any(line.split()[:4] == ["1", "8", "triton", "direct"] and line.endswith("3.5") for line in lines)
    met = format_report(table(_cells(kserve=500, triton=6000, triton_gateway=1900, ceiling=2000))).splitlines()
    assert "direct: met" in met[-2] and "ceiling: met (0.95)" in met[-2]


def test_a_run_without_batch_1_and_8_clients_has_no_headline():
    frame = table(_cells(500, 6000, 1800, 2000))
    frame["clients"] = 32
    assert "triton/kserve-python" not in format_report(frame)


def test_triton_batching_is_the_difference_of_the_scraped_totals():
    from lab_helpers.prom.triton import counters, counters_at_rest, wait_for_requests

    totals = [{"nv_inference_request_success": 10.0, "nv_inference_count": 10.0, "nv_inference_exec_count": 10.0},
              {"nv_inference_request_success": 410.0, "nv_inference_count": 410.0, "nv_inference_exec_count": 110.0}]
    asked = []

    class Prom:
        def wait_for_series(self, promql, timeout):
            return pd.DataFrame({"value": [1.0]})

        def query(self, promql):
            asked.append(promql)
            metric = promql.split("(")[1].split("{")[0]
            return pd.DataFrame({"value": [totals[0 if len(asked) <= 3 else 1][metric]]})

    before = counters(Prom(), "digits", "p1")
    after = wait_for_requests(Prom(), "digits", "p1", requests=410)
    assert counters_at_rest(Prom(), "digits", "p1", scrape_interval=0) == after  # present and no longer moving
    assert asked[0] == 'sum(nv_inference_request_success{model="digits",pod="p1"})'
    assert ((after - before).rows_per_request, (after - before).rows_per_execution) == (1.0, 4.0)
