"""The batch-scoring Job's program: a CSV of raw records through an InferenceService, labels written beside it.

    python -m lab_helpers.shapes.batch_scorer --input file:///data/rows.csv \\
        --url http://iris-shapes-transformer.lab.svc.cluster.local --model iris-shapes \\
        --batch-size 50 --concurrency 4

Rows go in requests of ``--batch-size`` with at most ``--concurrency`` in flight: the service sees a
steady, bounded load instead of a flood, and each request carries enough rows to amortise its
per-request cost. The output keeps the input's columns and order and adds ``label``; the last line
on stdout sums the run up. Any failure exits 1 with one line on stderr naming the batch and the
cause, which the Job's pod keeps as its termination message.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
import time
from typing import Any

import httpx

from .objects import read_bytes, scored_uri, write_bytes
from .scoring import ScoringError, predict_labels

LABEL_COLUMN = "label"


def parse_rows(data: bytes) -> list[dict[str, Any]]:
    """CSV rows as records, numbers as floats (the header names the raw fields)."""
    rows = []
    for number, row in enumerate(csv.DictReader(io.StringIO(data.decode())), start=2):
        try:
            rows.append({key: float(value) for key, value in row.items()})
        except (TypeError, ValueError):
            raise ValueError(f"line {number}: every field must be a number, got {row}") from None
    if not rows:
        raise ValueError("the batch input has a header and no rows")
    return rows


def format_rows(rows: list[dict[str, Any]], labels: list[str] | None = None) -> bytes:
    """Rows as CSV, with a ``label`` column when `labels` are given (one per row)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*rows[0], *([LABEL_COLUMN] if labels is not None else [])],
                            lineterminator="\n")
    writer.writeheader()
    for index, row in enumerate(rows):
        writer.writerow({**row, LABEL_COLUMN: labels[index]} if labels is not None else row)
    return out.getvalue().encode()


async def score_rows(rows: list[dict[str, Any]], url: str, model: str, batch_size: int, concurrency: int,
                     host: str | None = None, timeout: float = 30.0,
                     transport: httpx.AsyncBaseTransport | None = None) -> list[str]:
    """One label per row, in order: batches of `batch_size`, at most `concurrency` requests in flight."""
    if batch_size < 1 or concurrency < 1:
        raise ValueError(f"batch size and concurrency must be >= 1, got {batch_size} and {concurrency}")
    batches = [rows[start:start + batch_size] for start in range(0, len(rows), batch_size)]
    gate = asyncio.Semaphore(concurrency)

    async def score(index: int, batch: list[dict[str, Any]]) -> list[str]:
        async with gate:
            try:
                return await predict_labels(client, url, model, batch, host)
            except (ScoringError, httpx.HTTPError) as exc:
                first = index * batch_size
                raise ScoringError(f"rows {first}-{first + len(batch) - 1}: {exc}") from exc

    async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
        results = await asyncio.gather(*(score(i, batch) for i, batch in enumerate(batches)))
    return [label for labels in results for label in labels]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers.shapes.batch_scorer",
                                     description="Score a CSV of raw records through an InferenceService.")
    parser.add_argument("--input", required=True, help="file:// or s3:// URI of the CSV")
    parser.add_argument("--url", required=True, help="the InferenceService's base URL (its entry-point Service)")
    parser.add_argument("--model", required=True, help="the model name in /v1/models/NAME:predict")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output = scored_uri(args.input)
    started = time.perf_counter()
    try:
        rows = parse_rows(read_bytes(args.input))
        labels = asyncio.run(score_rows(rows, args.url, args.model, args.batch_size, args.concurrency,
                                        timeout=args.timeout))
        write_bytes(output, format_rows(rows, labels))
    except (OSError, ValueError, ScoringError) as exc:
        print(f"batch scoring of {args.input} failed: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    print(f"scored {len(rows)} rows in {seconds:.2f} s ({len(rows) / seconds:.0f} rows/s) -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
