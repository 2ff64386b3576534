"""`python -m lab_helpers ...`: run the series, test it, manage the local target, check a cluster."""
from __future__ import annotations

import argparse
import importlib
import sys


def _run(args: argparse.Namespace) -> int:
    from .series.runner import NotebookFailure, run_series
    from .site.build import SiteBuildError

    try:
        run_series(target=args.target, only=args.only, start=args.start, cell_timeout=args.cell_timeout,
                   refresh=args.command == "refresh")
    except (NotebookFailure, SiteBuildError) as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


def _nbtest(args: argparse.Namespace) -> int:
    from .series.nbtest import run_nbval

    return run_nbval(target=args.target, only=args.only, start=args.start, cell_timeout=args.cell_timeout)


def _site(args: argparse.Namespace) -> int:
    from .site.build import main

    return main(check=args.check)


def _local(args: argparse.Namespace) -> int:
    from .local import control

    code = {"up": control.up, "down": control.down, "status": control.status}[args.command]()
    if args.command == "down":  # notebook 12's standalone servers run outside the local target
        from .compare.servers import stop_recorded

        for name in stop_recorded():
            print(f"stopped standalone server {name} (left by an interrupted notebook 12)")
    return code


def _doctor(args: argparse.Namespace) -> int:
    if args.target == "local":
        from .local import control

        return control.status()
    from .kube.doctor import run_doctor

    return run_doctor(context=args.context)


# Benchmarks with a module of their own take their arguments after the name; the rest go to bench.gateway,
# which also runs its own helper processes (serve-runtime, serve-gateway).
OWN_MODULE_BENCHES = ("coldstart", "runtimes", "policy", "canary", "inference_logger", "compare")


def _bench(args: argparse.Namespace) -> int:
    name, rest = (args.rest[0], args.rest[1:]) if args.rest[:1] and args.rest[0] in OWN_MODULE_BENCHES else \
        ("gateway", args.rest)
    return importlib.import_module(f".bench.{name}", __package__).main(rest)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab_helpers", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (("run", "execute the notebook series headless into build/executed/ and build the site"),
                        ("refresh", "re-execute on the local target and write outputs back into notebooks/"),
                        ("nbtest", "check committed checkpoint outputs with nbval")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--target", choices=["local", "kubernetes"], default="local")
        s.add_argument("--only", metavar="NN", help="just this notebook number")
        s.add_argument("--from", dest="start", metavar="NN", help="start at this notebook number")
        s.add_argument("--cell-timeout", type=int, default=900, help="seconds per cell")
        s.set_defaults(func=_nbtest if name == "nbtest" else _run)
    site = sub.add_parser("site", help="rebuild build/site/ from build/executed/ alone, without re-running")
    site.add_argument("--check", action="store_true", help="then open every page in headless Chromium")
    site.set_defaults(func=_site)
    for name, help_ in (("up", "start the local control plane"), ("down", "stop it and every process it runs"),
                        ("status", "is it running, and what does it run")):
        sub.add_parser(name, help=help_).set_defaults(func=_local)
    d = sub.add_parser("doctor", help="check that a target has everything the series needs")
    d.add_argument("--target", choices=["local", "kubernetes"], default="kubernetes")
    d.add_argument("--context", help="kubeconfig context (default: the current one)")
    d.set_defaults(func=_doctor)
    b = sub.add_parser("bench", help="benchmarks that print figures side by side (see docs/benchmarks.md)")
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)
