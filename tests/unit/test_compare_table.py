"""The comparison table: figures with units, ratios, and tying a prose number to a printed figure."""
import math

import pandas as pd
import pytest

from lab_helpers.compare.measure import CEILING
from lab_helpers.compare.table import Comparison, cited_figures, matches, printed_figures, unmatched


def _points(with_ceiling: bool = True) -> pd.DataFrame:
    rps = {"triton": (1000, 4000), "kserve": (500, 1000), "fastapi": (100, 125), CEILING: (800, 2000)}
    rows = [{"path": path, "clients": clients, "requests": 10, "errors": 0, "req_per_s": values[index],
             "p50_ms": 1000 / values[index], "p99_ms": 4000 / values[index]}
            for path, values in rps.items() if with_ceiling or path != CEILING
            for index, clients in enumerate((1, 8))]
    return pd.DataFrame(rows)


def _comparison(with_ceiling: bool = True) -> Comparison:
    return Comparison(_points(with_ceiling), {"triton": 2.0, "kserve": 5.0, "fastapi": 6.0},
                      {"triton": 100 * 2**20, "kserve": 100 * 2**20, "fastapi": 250 * 2**20},
                      {"triton": 26, "kserve": 101, "fastapi": 45})


def test_table_has_every_metric_with_units_and_the_ceiling_beside_b() -> None:
    table = _comparison().table()
    assert list(table.columns) == ["(a) raw Triton", "(b) KServe + Triton", "(c) FastAPI", f"{CEILING} (beside b)"]
    assert table.loc["throughput at 8 clients", "(a) raw Triton"] == "4000 req/s"
    assert table.loc["p50 at 1 client", "(c) FastAPI"] == "10.00 ms"
    assert table.loc["resident memory (RSS)", "(c) FastAPI"] == "250 MB"
    assert table.loc["configuration you write", "(b) KServe + Triton"] == "101 lines"
    assert table.loc["time to first ready", f"{CEILING} (beside b)"] == ""
    assert table.loc["throughput at 8 clients", f"{CEILING} (beside b)"] == "2000 req/s"


def test_without_a_ceiling_there_is_no_ceiling_column_and_its_ratio_is_missing() -> None:
    comparison = _comparison(with_ceiling=False)
    assert len(comparison.table().columns) == 3
    assert math.isnan(comparison.ratios()["throughput at 8: (b) KServe / gateway ceiling"])
    assert "n/a" in comparison.report()


def test_ratios() -> None:
    ratios = _comparison().ratios()
    assert ratios["throughput at 8: (a) raw Triton / (c) FastAPI"] == pytest.approx(32)
    assert ratios["throughput at 8: (b) KServe / gateway ceiling"] == pytest.approx(0.5)
    assert ratios["p50 at 8: (c) FastAPI / (a) raw Triton"] == pytest.approx(32)
    assert ratios["RSS: (c) FastAPI / (a) raw Triton"] == pytest.approx(2.5)
    assert ratios["time to first ready: (b) KServe + Triton / (a) raw Triton"] == pytest.approx(2.5)


def test_missing_rss_prints_not_available() -> None:
    comparison = Comparison(_points(), {"triton": 1.0, "kserve": 1.0, "fastapi": 1.0},
                            {"triton": 1.0, "kserve": None, "fastapi": 1.0}, {"triton": 1, "kserve": 1, "fastapi": 1})
    assert comparison.table().loc["resident memory (RSS)", "(b) KServe + Triton"] == "n/a"


def test_a_cited_number_matches_a_printed_figure_of_its_unit_within_its_rounding() -> None:
    assert matches("3", 3.49) and not matches("3", 3.51)
    assert matches("2.5", 2.54) and not matches("2.5", 2.56)
    assert cited_figures("about 30× the req/s, 250 MB, 2 s and notebook 04") == [
        ("30", "×"), ("250", "MB"), ("2", "s"), ("04", None)]
    assert printed_figures("4000 req/s 1.5 s 3.20×")["req/s"] == [4000.0]
    report = _comparison().report()
    assert unmatched("about 32× the throughput, 2.5× the memory, 101 lines", report) == []
    assert unmatched("about 40×", report) == ["40 ×"]
    assert unmatched("notebook 04", report) == ["04 (no unit)"]
    assert unmatched("250 ms", report) == ["250 ms"]   # 250 is printed, but as MB


def test_bar_chart_has_four_panels_and_marks_the_ceiling_beside_b() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from lab_helpers.compare.chart import bar_chart

    fig = bar_chart(_comparison())
    assert [ax.get_title() for ax in fig.axes] == ["throughput (req/s, log)", "p50 latency (ms, log)",
                                                   "resident memory (MB)", "time to first ready (s)"]
    assert f"{CEILING} (beside b)" in [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
