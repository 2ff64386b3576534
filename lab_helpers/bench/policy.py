"""``python -m lab_helpers bench policy``: the CPU the gateway's network-policy check adds to one request.

The check runs on the request head before anything else (`policy.enforcement.PolicyEnforcer.admit`): who is
calling (the ipcache), the policies selecting the destination, the L3/L4 and L7 verdict, one flow recorded.
Two measurements, with the lab's own policy (``manifests/policy/iris-callers.yaml``):

- the call alone, in-process, on aiohttp request objects, per case (and for a destination no policy selects);
- ``--through-gateway``: a Gateway in this process proxying to a trivial backend process, with and without the
  check, alternating; the process's CPU per request (gateway and client together, so only the difference
  counts) shows what the check costs inside a real request, allocation and caching effects included.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from typing import Sequence
from unittest import mock

import aiohttp
import uvloop
from aiohttp.test_utils import make_mocked_request

from ..gateway import Backend, Gateway, Route, RouteTable
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


# A backend that answers every request with a small JSON body, as fast as aiohttp can.
_BACKEND = """
import socket
from aiohttp import web
async def answer(request):
    await request.read()
    return web.json_response({"outputs": [{"name": "predict", "data": [0]}]})
app = web.Application()
app.router.add_route("*", "/{tail:.*}", answer)
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
web.run_app(app, sock=listener, access_log=None, print=None)
"""
INGRESS_HOST = "iris-lab.example.com"


async def _gateway_cpu_per_request(backend_url: str, admit, requests: int, concurrency: int) -> float:
    """CPU microseconds of this process per request proxied through a Gateway with the `admit` hook."""
    table = RouteTable([Route(INGRESS_HOST, [replace(TARGET, backends=[Backend(backend_url)])])])
    gateway = Gateway(table, admit=admit)
    port = await gateway.start()
    url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
    try:
        async with aiohttp.ClientSession() as client:
            async def send(count: int) -> None:
                for _ in range(count):
                    async with client.post(url, data=b"{}", headers={"Host": INGRESS_HOST}) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"the gateway answered {response.status}")

            await asyncio.gather(*(send(50) for _ in range(concurrency)))  # warm the connection pools
            started = time.process_time()
            await asyncio.gather(*(send(requests // concurrency) for _ in range(concurrency)))
            return (time.process_time() - started) / (requests // concurrency * concurrency) * 1e6
    finally:
        await gateway.stop()


def through_gateway(pairs: int, requests: int, concurrency: int) -> list[tuple[float, float]]:
    """(without, with) CPU microseconds per request for `pairs` alternating runs."""
    backend = subprocess.Popen([sys.executable, "-c", _BACKEND], stdout=subprocess.PIPE, text=True)
    try:
        line = backend.stdout.readline() if backend.stdout else ""
        if not line.strip().isdigit():
            raise RuntimeError("the backend process did not report its port")
        url = f"http://127.0.0.1:{int(line)}"
        admit = lab_policy_enforcer(DESTINATION).admit
        return [(uvloop.run(_gateway_cpu_per_request(url, None, requests, concurrency)),
                 uvloop.run(_gateway_cpu_per_request(url, admit, requests, concurrency))) for _ in range(pairs)]
    finally:
        backend.kill()
        backend.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers bench policy", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000, help="admit() calls per run (default 20000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per case; the best is printed (default 5)")
    parser.add_argument("--through-gateway", action="store_true", help="also measure inside a real Gateway")
    parser.add_argument("--pairs", type=int, default=4, help="--through-gateway: alternating pairs (default 4)")
    parser.add_argument("--requests", type=int, default=6000, help="--through-gateway: requests per run")
    args = parser.parse_args(argv)
    if min(args.calls, args.repeats, args.pairs, args.requests) < 1:
        parser.error("--calls, --repeats, --pairs and --requests must be >= 1")
    print(f"policy check per request (best of {args.repeats} x {args.calls} calls, one flow recorded each):")
    for name, (with_policy, request_args) in CASES.items():
        print(f"  {name:<30} {time_case(with_policy, request_args, args.calls, args.repeats):6.1f} us")
    if args.through_gateway:
        print(f"through a Gateway in this process (8 clients, {args.requests} requests a run, ingress Host, "
              "the lab's L7 policy): CPU us per request, gateway + client")
        results = through_gateway(args.pairs, args.requests, 8)
        for index, (without, with_check) in enumerate(results, 1):
            print(f"  pair {index}: without check {without:6.0f}   with check {with_check:6.0f}   "
                  f"difference {with_check - without:+5.0f}")
        print(f"  median difference {statistics.median(w - o for o, w in results):+.0f} us per request")
    return 0
