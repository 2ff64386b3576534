"""``python -m lab_helpers bench coldstart``: what activation adds to a cold start, measured trial by trial.

Each trial lets a scale-to-zero InferenceService reach zero, sends one request through the
interceptor and takes it apart (`scaling.coldstart`): the cold total, the same trial's runtime side
(first container start to Ready, from pod status: download, process start, model load, readiness)
and their difference, the activation overhead (hold, scale decision, pod creation, routing, the
answer). Warm requests through the interceptor and straight to the pod show what the interceptor
costs once a pod is up. The goal (local target): a median activation overhead of at most 0.2 s,
which only holds if every hop is woken by the change before it, never by a polling pass.
"""
from __future__ import annotations

import argparse
from typing import Sequence

import pandas as pd

from .. import connect
from ..scaling.cold_trials import ScaleToZeroService, run_trials, scale_to_zero_objects

GOAL_OVERHEAD_S = 0.2
NAME = "iris-coldstart-bench"
REQUEST = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [[6.8, 2.8, 4.8, 1.4]]}]}


def _s(seconds: float | None) -> str:
    """Seconds to the millisecond; "n/a" for a trial that was not answered (no pod to time)."""
    return "n/a" if seconds is None or pd.isna(seconds) else f"{seconds:.3f}s"


def report(frame: pd.DataFrame) -> list[str]:
    """The figures, one trial per line, then the medians; the goal on the last lines."""
    cold = frame[frame["kind"] == "cold"]
    lines = [f"{'trial':>5}  {'status':>6}  {'cold total':>10}  {'runtime side':>12}  {'activation overhead':>19}"]
    for row in cold.itertuples():
        lines.append(f"{row.trial:>5}  {row.status:>6}  {_s(row.total_s):>10}  {_s(row.runtime_s):>12}  "
                     f"{_s(row.overhead_s):>19}")
    lines.append(f"{'median':>5}  {'':>6}  {_s(cold['total_s'].median()):>10}  {_s(cold['runtime_s'].median()):>12}  "
                 f"{_s(cold['overhead_s'].median()):>19}")
    warm = frame[frame["kind"] != "cold"].groupby("kind")["total_s"].median() * 1000
    lines += ["", f"warm p50 through the interceptor : {warm.get('warm', float('nan')):.2f} ms",
              f"warm p50 direct to the pod       : {warm.get('warm, direct to pod', float('nan')):.2f} ms", ""]
    overhead = cold["overhead_s"].median()
    lines += [f"activation overhead: median {overhead:.2f} s",
              f"goal (local target): <= {GOAL_OVERHEAD_S:.2f} s -> {'met' if overhead <= GOAL_OVERHEAD_S else 'NOT met'}"]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers bench coldstart", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="cold starts (default 5)")
    parser.add_argument("--warm", type=int, default=50, help="warm requests per path per trial (default 50)")
    parser.add_argument("--target", choices=["local", "kubernetes"], default="local")
    parser.add_argument("--namespace", default="lab")
    args = parser.parse_args(argv)

    lab = connect(args.target, namespace=args.namespace)
    lab.require("kserve")
    lab.apply("manifests/platform/keda.yaml")
    for release in ("keda", "keda-add-ons-http"):
        lab.wait_ready("HelmRelease", release, namespace="keda", timeout=300)
    variables = lab.variables({"IRIS_SKLEARN_STORAGE_URI": lab.model_uri("iris", alias="champion", flavor="sklearn"),
                               "S2Z_COOLDOWN_SECONDS": "2", "S2Z_POLLING_SECONDS": "1",
                               "S2Z_READINESS_TIMEOUT": "120s"})
    lab.apply(scale_to_zero_objects(NAME, variables))
    service = ScaleToZeroService(NAME, NAME, NAME, NAME, args.namespace)
    try:
        frame = run_trials(lab, service, REQUEST, trials=args.trials, warm=args.warm)
    finally:
        for kind in ("InferenceService", "InterceptorRoute", "ScaledObject"):
            lab.delete(kind, NAME)
    print(f"\ncold start of {NAME} (sklearn iris on kserve-mlserver), {args.trials} trials, {args.target} target")
    print("\n".join(report(frame)))
    return 0
