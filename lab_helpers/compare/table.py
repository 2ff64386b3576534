"""The comparison table of one run, its ratios, and the figures as the reflection may cite them.

Every figure is printed with its unit (``s``, ``ms``, ``req/s``, ``MB``, ``lines``, ``×``), so a cited number
can be tied to a printed one of the same unit (`cited_figures`, `printed_figures`, `unmatched`): the test of
notebook 12 holds the reflection to the committed run's table within the rounding the reflection uses.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from .measure import CEILING

PATHS = {"triton": "(a) raw Triton", "kserve": "(b) KServe + Triton", "fastapi": "(c) FastAPI"}
UNITS = ("req/s", "ms", "s", "MB", "lines", "×")
# A number and the unit after it; req/s before s, so "900 req/s" is not read as seconds.
FIGURE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(req/s|ms|MB|lines|×|s)(?![\w/])")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Comparison:
    """The measured run: load points (`measure.load_points`), times to first ready, RSS bytes, config lines."""

    points: pd.DataFrame
    ready_s: dict[str, float]
    rss_bytes: dict[str, float | None]
    config_lines: dict[str, int]

    @property
    def clients(self) -> list[int]:
        return sorted(self.points["clients"].unique().tolist())

    def point(self, path: str, clients: int, column: str) -> float:
        found = self.points[(self.points["path"] == path) & (self.points["clients"] == clients)][column]
        return float(found.iloc[0]) if len(found) else math.nan

    def table(self) -> pd.DataFrame:
        """Metric × path, each cell a figure with its unit; the gateway's ceiling beside (b) where measured."""
        columns = [*PATHS, CEILING] if (self.points["path"] == CEILING).any() else list(PATHS)
        rows: dict[str, dict[str, str]] = {"time to first ready": {p: _fmt(self.ready_s.get(p), "s", 1) for p in PATHS}}
        for count in self.clients:
            plural = "client" if count == 1 else "clients"
            rows[f"p50 at {count} {plural}"] = {p: _fmt(self.point(p, count, "p50_ms"), "ms", 2) for p in columns}
            rows[f"p99 at {count} {plural}"] = {p: _fmt(self.point(p, count, "p99_ms"), "ms", 2) for p in columns}
            rows[f"throughput at {count} {plural}"] = {p: _fmt(self.point(p, count, "req_per_s"), "req/s", 0)
                                                       for p in columns}
        rows["resident memory (RSS)"] = {p: _fmt(_mb(self.rss_bytes.get(p)), "MB", 0) for p in PATHS}
        rows["configuration you write"] = {p: _fmt(self.config_lines.get(p), "lines", 0) for p in PATHS}
        frame = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns).fillna("")
        return frame.rename(columns={**PATHS, CEILING: f"{CEILING} (beside b)"})

    def ratios(self) -> dict[str, float]:
        """The ratios the reflection reads, named; NaN where a figure is missing."""
        most = max(self.clients)
        out = {}
        for count in self.clients:
            rps = {p: self.point(p, count, "req_per_s") for p in (*PATHS, CEILING)}
            out[f"throughput at {count}: (a) raw Triton / (c) FastAPI"] = _div(rps["triton"], rps["fastapi"])
            out[f"throughput at {count}: (a) raw Triton / (b) KServe"] = _div(rps["triton"], rps["kserve"])
            out[f"throughput at {count}: (b) KServe / (c) FastAPI"] = _div(rps["kserve"], rps["fastapi"])
            out[f"throughput at {count}: (b) KServe / gateway ceiling"] = _div(rps["kserve"], rps[CEILING])
        out[f"p50 at {most}: (c) FastAPI / (a) raw Triton"] = _div(self.point("fastapi", most, "p50_ms"),
                                                                  self.point("triton", most, "p50_ms"))
        out[f"p50 at {most}: (b) KServe / (a) raw Triton"] = _div(self.point("kserve", most, "p50_ms"),
                                                                 self.point("triton", most, "p50_ms"))
        for path in ("kserve", "fastapi"):
            label = PATHS[path]
            out[f"time to first ready: {label} / (a) raw Triton"] = _div(self.ready_s.get(path),
                                                                        self.ready_s.get("triton"))
            out[f"RSS: {label} / (a) raw Triton"] = _div(self.rss_bytes.get(path), self.rss_bytes.get("triton"))
            out[f"config lines: {label} / (a) raw Triton"] = _div(self.config_lines.get(path),
                                                                 self.config_lines.get("triton"))
        return out

    def report(self) -> str:
        """The table, then the ratios, every figure with its unit."""
        ratios = "\n".join(f"  {name:<58} {_fmt(value, '×', 2)}" for name, value in self.ratios().items())
        return f"{self.table().to_string()}\n\nratios\n{ratios}"


def _mb(value: float | None) -> float | None:
    return None if value is None else value / 2**20


def _div(a: float | None, b: float | None) -> float:
    return a / b if a is not None and b and not math.isnan(a) and not math.isnan(b) else math.nan


def _fmt(value: float | None, unit: str, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{decimals}f}{unit}" if unit == "×" else f"{value:.{decimals}f} {unit}"


def printed_figures(text: str) -> dict[str, list[float]]:
    """Every figure in printed output, by unit."""
    figures: dict[str, list[float]] = {unit: [] for unit in UNITS}
    for number, unit in FIGURE.findall(text):
        figures[unit].append(float(number))
    return figures


def cited_figures(text: str) -> list[tuple[str, str | None]]:
    """Every number in prose, with the unit after it (None when it has none: not a figure of the table)."""
    units = {match.start(1): match.group(2) for match in FIGURE.finditer(text)}
    return [(match.group(0), units.get(match.start())) for match in NUMBER.finditer(text)]


def matches(cited: str, printed: float) -> bool:
    """`printed` rounds to `cited` at the precision it is cited with ("3" covers 2.5 up to 3.5)."""
    decimals = len(cited.partition(".")[2])
    return abs(printed - float(cited)) <= 0.5 * 10 ** -decimals + 1e-9


def unmatched(prose: str, output: str) -> list[str]:
    """Numbers of `prose` that no printed figure of the same unit in `output` rounds to (empty: all backed)."""
    figures = printed_figures(output)
    return [f"{number} {unit or '(no unit)'}" for number, unit in cited_figures(prose)
            if unit is None or not any(matches(number, value) for value in figures[unit])]
