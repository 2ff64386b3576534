"""wrk points per path and client count, each path's Host and headers in its script."""
from pathlib import Path

import pytest

from lab_helpers.compare import measure
from lab_helpers.compare.measure import CEILING, Target, ceiling_target, load_points


class _Gateway:
    url = "http://127.0.0.1:9"


def test_load_points_interleave_paths_per_client_count(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def fake_wrk(url, script, clients, seconds):
        calls.append((url, Path(script).read_text(), clients, seconds))
        return {"requests": 100 * clients, "errors": 1, "seconds": 2.0, "p50_ms": 1.0, "p99_ms": 3.0}, 0.1

    monkeypatch.setattr(measure, "run_wrk", fake_wrk)
    targets = [Target("triton", "http://127.0.0.1:1/v2/models/digits/infer"), ceiling_target(_Gateway(), 321)]
    frame = load_points(targets, {"inputs": []}, [1, 8], 2, tmp_path)
    assert [(row.path, row.clients) for row in frame.itertuples()] == [
        ("triton", 1), (CEILING, 1), ("triton", 8), (CEILING, 8)]
    assert frame["req_per_s"].tolist() == [49.5, 49.5, 399.5, 399.5]
    ceiling_script = calls[1][1]
    assert 'wrk.headers["Host"] = "null.bench.example.com"' in ceiling_script
    assert 'wrk.headers["x-null-bytes"] = "321"' in ceiling_script
    assert "Host" not in calls[0][1]


@pytest.mark.parametrize("clients, seconds, message", [([], 1, "clients"), ([0], 1, "clients"), ([1], 0, "seconds")])
def test_bad_settings_are_refused(tmp_path: Path, clients, seconds, message) -> None:
    with pytest.raises(ValueError, match=message):
        load_points([], {}, clients, seconds, tmp_path)
