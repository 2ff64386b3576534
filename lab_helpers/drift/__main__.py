"""``python -m lab_helpers.drift check ...``: the drift job's command line (see `drift.job`)."""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timedelta
from typing import Sequence

from pytimeparse2 import parse as parse_seconds

from .job import Check, run
from .statistics import DEFAULT_ALPHA


def _window(text: str) -> tuple[datetime, datetime]:
    """``<since>/<until>`` in ISO 8601, e.g. 2026-12-02T10:00:00Z/2026-12-02T11:00:00Z."""
    since, _, until = text.partition("/")
    try:
        return datetime.fromisoformat(since.replace("Z", "+00:00")), datetime.fromisoformat(until.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not <since>/<until> in ISO 8601 "
                                         "(e.g. 2026-12-02T10:00:00Z/2026-12-02T11:00:00Z)") from None


def _duration(text: str) -> timedelta:
    seconds = parse_seconds(text)
    if not seconds or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 15m, 1h, 90s)")
    return timedelta(seconds=float(seconds))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers.drift", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="judge the last window of one InferenceService and push the result")
    check.add_argument("--receiver", required=True, help="the drift receiver's URL (or its data directory)")
    check.add_argument("--inference-service", required=True)
    check.add_argument("--namespace")
    check.add_argument("--window", type=_duration, default=timedelta(minutes=15), help="the window judged (15m)")
    check.add_argument("--reference-window", type=_window, required=True, help="<since>/<until>: known-good traffic")
    check.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    check.add_argument("--pushgateway", required=True, help="e.g. http://pushgateway.monitoring:9091")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(Check(args.receiver, args.inference_service, args.namespace, args.reference_window, args.window,
                  args.alpha), args.pushgateway)
    except (ConnectionError, ValueError) as exc:
        logging.getLogger("lab.drift").error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
