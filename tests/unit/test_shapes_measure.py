"""ShapeRun figures, the CPU a pod template requests, and the table's columns."""
import pytest

from lab_helpers.shapes.measure import ShapeRun, requested_cores, table, timed_calls

RUN = ShapeRun("online", rows=4, seconds=2.0, latencies=(0.1, 0.2, 0.3, 0.4), cores=0.5)


def test_throughput_quantiles_and_cost_per_row():
    assert RUN.throughput == 2.0
    assert (RUN.latency(0.5), RUN.latency(0.95)) == (0.3, 0.4)
    assert RUN.core_ms_per_row == pytest.approx(250.0)  # 0.5 cores x 2 s / 4 rows


def test_requested_cores_sums_container_requests():
    template = {"spec": {"containers": [{"resources": {"requests": {"cpu": "100m"}}},
                                        {"resources": {"requests": {"cpu": "1"}}}, {}]}}
    assert requested_cores([template, template]) == pytest.approx(2.2)


def test_the_table_has_one_row_per_shape():
    frame = table([RUN])
    assert list(frame.index) == ["online"]
    assert frame.loc["online", "p95 ms"] == 400.0 and frame.loc["online", "core-ms/row"] == 250.0


def test_timed_calls_times_each_call():
    seconds, latencies = timed_calls(lambda: None, 3)
    assert len(latencies) == 3 and seconds >= sum(latencies)
