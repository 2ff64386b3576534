"""``python -m lab_helpers bench canary``: how long a promotion and a rollback take, beside Flagger's rules of thumb.

Flagger's docs give the minimum time to promote as ``interval x maxWeight / stepWeight`` and the
time to roll back as about ``interval x threshold``
(https://docs.flagger.app/usage/deployment-strategies#canary-release). This runs the lab's two
rollouts on a fresh canary (v2, the challenger, promoted; v3, the skewed model, rolled back) and
prints the measured spans from the Canary's own status beside those rules. The measured promotion
also holds the passes the rule leaves out: Flagger noticing the change (up to one interval), the
first step (pre-rollout hooks, no metrics), and promote, route back, finalise (three more).
"""
from __future__ import annotations

import argparse
from typing import Sequence

import pandas as pd

from .. import connect
from ..canary.setup import CanaryTiming, fresh_canary, install_flagger, roll_out, rollout_variables

DONE = ("Succeeded", "Failed")


def rollout_spans(frame: pd.DataFrame) -> dict[str, float]:
    """From a RolloutRecorder frame: seconds from the start to Progressing, to the first failed check, and to the
    end (Succeeded or Failed); a span that did not happen is NaN."""
    def first(mask: pd.Series) -> float:
        hits = frame.loc[mask, "seconds"]
        return float(hits.iloc[0]) if len(hits) else float("nan")

    progressing = first(frame["phase"] == "Progressing")
    after = frame["seconds"] >= (progressing if progressing == progressing else 0.0)
    return {"progressing": progressing, "first_failure": first(after & (frame["failed_checks"] > 0)),
            "done": first(after & frame["phase"].isin(DONE))}


def report(timing: CanaryTiming, promotion: pd.DataFrame, rollback: pd.DataFrame) -> list[str]:
    """The measured spans beside the rules of thumb, the two ratios on the last lines."""
    interval = float(timing.interval.rstrip("s"))
    promote_rule = interval * timing.max_weight / timing.step_weight
    rollback_rule = interval * timing.threshold
    p, r = rollout_spans(promotion), rollout_spans(rollback)
    promote_measured = p["done"] - p["progressing"]
    rollback_measured = r["done"] - r["first_failure"]
    return [
        f"interval {timing.interval}, stepWeight {timing.step_weight}, maxWeight {timing.max_weight}, "
        f"threshold {timing.threshold}",
        f"{'':<38}{'measured':>10}{'rule of thumb':>16}",
        f"{'promotion: change -> Progressing':<38}{p['progressing']:>9.1f}s{'<= 1 interval':>16}",
        f"{'promotion: Progressing -> Succeeded':<38}{promote_measured:>9.1f}s{promote_rule:>15.1f}s",
        f"{'rollback: first failed check -> Failed':<38}{rollback_measured:>9.1f}s{rollback_rule:>15.1f}s",
        f"promotion / (interval x maxWeight/stepWeight): {promote_measured / promote_rule:.2f} "
        f"(+3 intervals promote, route back, finalise: {(promote_rule + 3 * interval):.0f} s expected)",
        f"rollback / (interval x threshold): {rollback_measured / rollback_rule:.2f}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers bench canary", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["local", "kubernetes"], default="local")
    parser.add_argument("--namespace", default="lab")
    args = parser.parse_args(argv)
    lab = connect(args.target, namespace=args.namespace)
    lab.require("kserve", "monitoring")
    install_flagger(lab)
    timing = CanaryTiming()
    variables = rollout_variables(lab, timing, lab.model_uri("iris", alias="champion", flavor="sklearn"))
    fresh_canary(lab, variables)
    promotion = roll_out(lab, variables, lab.model_uri("iris", alias="challenger", flavor="sklearn"))
    rollback = roll_out(lab, variables, lab.model_uri("iris", version=3, flavor="sklearn"))
    print("\n".join(report(timing, promotion.frame(), rollback.frame())))
    return 0
