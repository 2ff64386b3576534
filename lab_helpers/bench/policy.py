"""``python -m lab_helpers bench policy``: the CPU the gateway's network-policy check adds to one request.

The check runs on the request head before anything else (`policy.enforcement.PolicyEnforcer.admit`): who is
calling (the ipcache), the policies selecting the destination, the L3/L4 and L7 verdict, one flow recorded.
This times that call alone, in-process, on real aiohttp request objects, with the lab's own policy
(``manifests/policy/iris-callers.yaml``) and for a destination no policy selects. Compare the figures with
the gateway's CPU per request in docs/benchmarks.md (about 1 ms on this machine).
"""
from __future__ import annotations

import argparse
import time
from typing import Sequence
from unittest import mock

from aiohttp.test_utils import make_mocked_request

from ..gateway.routes import RouteTarget
from ..manifests.loading import load_documents
from ..paths import manifests_dir
from ..policy.enforcement import PolicyEnforcer, PolicyState
from ..policy.flows import FlowLog
from ..policy.identity import Identity
from ..policy.rules import Destination, compile_policy

SCORER, NOTEBOOK = "127.0.0.2", "127.0.0.3"
SERVICE_HOST = "iris-predictor.lab.svc.cluster.local"
TARGET = RouteTarget("iris-predictor", "lab", "r1")
DESTINATION = Destination("lab", "iris-predictor", {"serving.kserve.io/inferenceservice": "iris",
                                                    "component": "predictor", "app": "isvc.iris-predictor"}, 8080, {})
ENDPOINTS = {SCORER: Identity("lab", {"inference-client": "iris"}), NOTEBOOK: Identity("lab", {"app": "notebook"})}


def _request(method: str, path: str, host: str, address: str):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (address, 40000) if name == "peername" \
        else default
    return make_mocked_request(method, path, headers={"Host": host, "Content-Type": "application/json"},
                               transport=transport)


def lab_policy_enforcer(destination: Destination = DESTINATION, with_policy: bool = True) -> PolicyEnforcer:
    """An enforcer holding the lab's iris policy (or none) for `destination`, as the control plane installs it."""
    policies = [p for doc in load_documents(manifests_dir() / "policy" / "iris-callers.yaml",
                                            {"NAMESPACE": destination.namespace})
                for p in compile_policy(doc.obj)] if with_policy else []
    enforcer = PolicyEnforcer(FlowLog(), is_intercepted=lambda host: False)
    enforcer.install(PolicyState({(destination.namespace, destination.service): (destination, tuple(policies))},
                                 ENDPOINTS))
    return enforcer


CASES = {
    "no policy selects the pod": (False, ("POST", "/v2/models/iris/infer", SERVICE_HOST, SCORER)),
    "L7 allowed (POST infer)": (True, ("POST", "/v2/models/iris/infer", SERVICE_HOST, SCORER)),
    "L7 denied (403)": (True, ("GET", "/metrics", SERVICE_HOST, SCORER)),
    "L3/L4 dropped": (True, ("POST", "/v2/models/iris/infer", SERVICE_HOST, NOTEBOOK)),
    "via the ingress (L7 allowed)": (True, ("POST", "/v2/models/iris/infer", "iris-lab.example.com", NOTEBOOK)),
}


def time_case(with_policy: bool, request_args: tuple[str, str, str, str], calls: int, repeats: int) -> float:
    """Microseconds per admit() call, the best of `repeats` runs of `calls` calls."""
    enforcer, request = lab_policy_enforcer(with_policy=with_policy), _request(*request_args)
    admit = enforcer.admit
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            admit(request, TARGET)
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers bench policy", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000, help="admit() calls per run (default 20000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per case; the best is printed (default 5)")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.repeats < 1:
        parser.error("--calls and --repeats must be >= 1")
    print(f"policy check per request (best of {args.repeats} x {args.calls} calls, one flow recorded each):")
    for name, (with_policy, request_args) in CASES.items():
        print(f"  {name:<30} {time_case(with_policy, request_args, args.calls, args.repeats):6.1f} us")
    return 0
