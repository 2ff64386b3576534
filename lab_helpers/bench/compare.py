"""``python -m lab_helpers bench compare``: notebook 12's three paths, measured for longer than the notebook does.

The same model (the registry's digits MLP) as (a) raw `tritonserver` on its repository, (b) the KServe
InferenceService on the Triton runtime (on `--target`, local by default), (c) the hand-rolled FastAPI app on
the MLflow model; predictions checked equal, then wrk at each number of clients with the lab gateway's
ceiling beside (b) on the local target (`lab_helpers.compare.run`). Prints the table and its ratios.
"""
from __future__ import annotations

import argparse
import os
from typing import Sequence

from .. import connect
from ..compare.models import MODEL
from ..compare.run import run_comparison


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers bench compare", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=_int_list, default=[1, 8], help="closed-loop wrk clients (default 1,8)")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per path and clients (default 5)")
    parser.add_argument("--target", choices=["local", "kubernetes"], default="local")
    parser.add_argument("--namespace", default="lab")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for path (b) to become ready")
    args = parser.parse_args(argv)
    lab = connect(args.target, namespace=args.namespace)
    lab.require("registry", "kserve")
    load_before = os.getloadavg()[0]
    try:
        run = run_comparison(lab, args.clients, args.seconds, args.timeout)
    except ValueError as exc:
        parser.error(str(exc))
    finally:
        lab.delete("InferenceService", MODEL)
    print(f"\ncompare: {MODEL} MLP served three ways, {args.target} target for (b); wrk, {args.seconds} s per point, "
          f"single-row requests; {os.cpu_count()} CPUs, 1-min load average {load_before:.2f} before the run")
    print(run.comparison.report())
    return 1 if run.comparison.points["errors"].sum() else 0
