"""The local inference logger: KServe's agent events shaped from gateway exchanges, sent off a bounded queue."""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CollectorRegistry

from lab_helpers.gateway.inference_logger import (
    LOGGER_ANNOTATION, REQUEST_TYPE, RESPONSE_TYPE, AgentConfig, InferenceLogger, agent_config, canonical_header,
    cloud_events, cluster_host)
from lab_helpers.gateway.proxy import Exchange
from lab_helpers.gateway.routes import Backend, RouteTarget
from lab_helpers.local.controllers.kserve_children import predictor_deployment
from lab_helpers.local.routing import logging_agents

BACKEND = "http://127.0.0.1:40001"
REQUEST = b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
RESPONSE = b'{"predictions": [1]}'
CONFIG = AgentConfig(url="http://drift-receiver.lab.svc.cluster.local", mode="all", inference_service="iris",
                     namespace="lab", component="predictor", endpoint="", source="iris-predictor-abc",
                     metadata_headers=("X-Request-Id",))


def exchange(status: int = 200, headers: dict[str, str] | None = None, response: bytes | None = RESPONSE,
             backend: str | None = BACKEND) -> Exchange:
    request_headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json", **(headers or {})}))
    return Exchange(request_id="r", host="iris-lab.example.com", method="POST", path_qs="/v1/models/iris:predict",
                    remote="127.0.0.1", request_headers=request_headers, request_body=REQUEST,
                    target=RouteTarget(service="iris-predictor", namespace="lab", revision="1"),
                    backend=Backend(backend) if backend else None, status=status, duration_s=0.25,
                    response_body=response)


def configured(**changes) -> AgentConfig:
    return replace(CONFIG, **changes)


def test_request_and_response_share_the_id_and_carry_kserve_attributes():
    request, response = cloud_events(CONFIG, exchange(headers={"x-request-id": "abc", "X-Other": "no"}), 1000.0)
    assert request.headers["Ce-Type"] == REQUEST_TYPE and response.headers["Ce-Type"] == RESPONSE_TYPE
    assert request.headers["Ce-Id"] == response.headers["Ce-Id"] and len(request.headers["Ce-Id"]) == 36
    for event in (request, response):
        assert event.url == CONFIG.url
        assert event.headers["Ce-Specversion"] == "1.0"
        assert event.headers["Ce-Source"] == "iris-predictor-abc"
        assert (event.headers["Ce-Inferenceservicename"], event.headers["Ce-Namespace"],
                event.headers["Ce-Component"], event.headers["Ce-Endpoint"]) == ("iris", "lab", "predictor", "")
        assert json.loads(event.headers["Ce-Metadata"]) == {"X-Request-Id": ["abc"]}
        assert event.headers["Content-Type"] == "application/json"  # the request's, on both events
        assert "Ce-Recordedtime" in event.headers
    assert (request.body, response.body) == (REQUEST, RESPONSE)
    # ce-time: when the request arrived (answer time minus duration) and when the response was seen.
    times = [datetime.fromisoformat(e.headers["Ce-Time"].replace("Z", "+00:00")).timestamp()
             for e in (request, response)]
    assert times == [999.75, 1000.0]


def test_the_callers_ce_id_is_reused():
    events = cloud_events(CONFIG, exchange(headers={"Ce-Id": "given-id"}), 1000.0)
    assert [e.headers["Ce-Id"] for e in events] == ["given-id", "given-id"]


@pytest.mark.parametrize(("mode", "status", "types"), [
    ("all", 200, [REQUEST_TYPE, RESPONSE_TYPE]), ("request", 200, [REQUEST_TYPE]),
    ("response", 200, [RESPONSE_TYPE]), ("all", 500, [REQUEST_TYPE]), ("all", 404, [REQUEST_TYPE]),
    ("response", 503, [])])
def test_mode_and_the_200_only_rule_decide_which_events(mode, status, types):
    events = cloud_events(configured(mode=mode), exchange(status=status), 1000.0)
    assert [e.headers["Ce-Type"] for e in events] == types


def test_metadata_headers_match_the_canonical_name_exactly_as_go_does():
    assert canonical_header("x-REQUEST-id") == "X-Request-Id"
    lower = configured(metadata_headers=("x-request-id",))  # never matches: Go compares canonical names
    assert json.loads(cloud_events(lower, exchange(headers={"X-Request-Id": "a"}), 1.0)[0].headers["Ce-Metadata"]) \
        == {}


def isvc(logger: dict | None) -> dict:
    predictor = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "file:///m"}}
    if logger is not None:
        predictor["logger"] = logger
    return {"metadata": {"name": "iris", "namespace": "lab"}, "spec": {"predictor": predictor}}


RUNTIME = {"metadata": {"name": "kserve-sklearnserver"},
           "spec": {"containers": [{"name": "kserve-container", "image": "kserve/sklearnserver"}]}}


def pod_of(deployment: dict, name: str = "iris-predictor-abc", ports: dict | None = None) -> dict:
    template = deployment["spec"]["template"]
    return {"metadata": {**template["metadata"], "name": name, "namespace": "lab"}, "spec": template["spec"],
            "status": {"phase": "Running", "lab": {"ports": ports or {"8080": 40001}}}}


def test_the_logger_spec_reaches_the_agent_config_through_the_pod_template():
    deployment = predictor_deployment(isvc({"mode": "response", "url": "http://sink.drift",
                                            "metadataHeaders": ["X-Request-Id", "X-B3-Traceid"]}), RUNTIME, False)
    assert agent_config(pod_of(deployment)) == AgentConfig(
        url="http://sink.drift", mode="response", inference_service="iris", namespace="lab", component="predictor",
        endpoint="", source="iris-predictor-abc", metadata_headers=("X-Request-Id", "X-B3-Traceid"))
    # No url: KServe's configmap default; no logger: no annotation, no agent.
    assert agent_config(pod_of(predictor_deployment(isvc({"mode": "all"}), RUNTIME, False))).url \
        == "http://default-broker"
    plain = predictor_deployment(isvc(None), RUNTIME, False)
    assert LOGGER_ANNOTATION not in plain["spec"]["template"]["metadata"]["annotations"]
    assert agent_config(pod_of(plain)) is None


class FakeStore:
    def __init__(self, pods: list[dict]):
        self.pods = pods

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        assert kind == "Pod"
        return self.pods


def test_routing_hands_the_gateway_one_agent_per_logged_backend():
    logged = pod_of(predictor_deployment(isvc({"mode": "all"}), RUNTIME, False))
    done = {**pod_of(predictor_deployment(isvc({"mode": "all"}), RUNTIME, False), "old", {"8080": 40002}),
            "status": {"phase": "Succeeded", "lab": {"ports": {"8080": 40002}}}}
    plain = pod_of(predictor_deployment(isvc(None), RUNTIME, False), "plain", {"8080": 40003})
    agents = logging_agents(FakeStore([logged, done, plain]))
    assert list(agents) == [BACKEND] and agents[BACKEND].source == "iris-predictor-abc"


@pytest.mark.parametrize(("host", "expected"), [
    ("drift-receiver", "drift-receiver.lab.svc.cluster.local"),
    ("drift-receiver.drift", "drift-receiver.drift.svc.cluster.local"),
    ("drift-receiver.drift.svc", "drift-receiver.drift.svc.cluster.local"),
    ("drift-receiver.drift.svc.cluster.local", "drift-receiver.drift.svc.cluster.local"),
    ("sink.example.com", None), ("localhost", None), ("127.0.0.1", None)])
def test_sink_hosts_resolve_as_cluster_dns_does_from_the_pods_namespace(host, expected):
    assert cluster_host(host, "lab") == expected


def sample(registry: CollectorRegistry, name: str, **labels) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def run_logger(sink_handler, exchanges: int, *, queue_size: int = 4, workers: int = 1, timeout_s: float = 5.0,
               dead_sink: bool = False, settle: float = 0.0):
    """Observe `exchanges` through a logger whose sink answers with `sink_handler`, then wait until the queue
    is drained (or `settle` seconds); returns (logger, registry, what the sink received)."""
    received: list[tuple[dict, bytes]] = []

    async def main():
        app = web.Application()

        async def handle(request: web.Request) -> web.Response:
            received.append((dict(request.headers), await request.read()))
            return await sink_handler(request)

        app.router.add_post("/{tail:.*}", handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        url = f"http://127.0.0.1:{server.port}/events"
        if dead_sink:
            await server.close()
        registry = CollectorRegistry()
        logger = InferenceLogger(registry, gateway_url=lambda: None, queue_size=queue_size, workers=workers,
                                 timeout_s=timeout_s)
        logger.set_agents({BACKEND: configured(url=url)})
        await logger.start()
        for _ in range(exchanges):
            logger.observe(exchange())
        if settle:
            await asyncio.sleep(settle)
        else:
            await asyncio.wait_for(logger.queue.join(), 10)
        await logger.stop()
        if not dead_sink:
            await server.close()
        return logger, registry

    logger, registry = asyncio.run(main())
    return logger, registry, received


async def accept(_: web.Request) -> web.Response:
    return web.Response(status=202)


def test_events_reach_the_sink_in_binary_mode_and_are_counted():
    _, registry, received = run_logger(accept, 2, queue_size=10)
    assert len(received) == 4
    headers, body = received[0]
    assert headers["Ce-Type"] == REQUEST_TYPE and body == REQUEST and headers["Content-Type"] == "application/json"
    assert sample(registry, "inference_logger_events_sent_total", namespace="lab", inferenceservice="iris",
                  type="request") == 2
    assert sample(registry, "inference_logger_events_sent_total", namespace="lab", inferenceservice="iris",
                  type="response") == 2


def test_a_slow_sink_fills_the_bounded_queue_and_later_events_are_dropped_not_waited_for(caplog):
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.Response(status=200)

    with caplog.at_level(logging.WARNING, logger="lab_helpers.gateway.inference_logger"):
        _, registry, _ = run_logger(slow, 10, queue_size=4, workers=1, timeout_s=0.2, settle=0.05)
    # 20 events, 4 fit in the queue (the one worker had not taken one yet): 16 dropped. observe() is
    # synchronous, so it cannot have waited for the sink: had it blocked, nothing would have been dropped.
    assert sample(registry, "inference_logger_events_dropped_total", namespace="lab", inferenceservice="iris",
                  reason="queue_full") == 16
    full = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(full) == 1  # once per burst, not per event


def test_a_dead_sink_is_logged_once_and_counted_while_inference_goes_on(caplog):
    with caplog.at_level(logging.WARNING, logger="lab_helpers.gateway.inference_logger"):
        _, registry, _ = run_logger(accept, 3, queue_size=10, dead_sink=True, settle=0.5)
    assert sample(registry, "inference_logger_send_failures_total", namespace="lab", inferenceservice="iris",
                  reason="unreachable") == 6
    lines = [r.getMessage() for r in caplog.records if "is unreachable" in r.getMessage()]
    assert len(lines) == 1 and "runbooks/inference-logger-sink.md" in lines[0]


def test_a_sink_answering_an_error_counts_as_rejected():
    async def refuse(_: web.Request) -> web.Response:
        return web.Response(status=400)

    _, registry, _ = run_logger(refuse, 1, queue_size=10)
    assert sample(registry, "inference_logger_send_failures_total", namespace="lab", inferenceservice="iris",
                  reason="rejected") == 2


def test_unlogged_backends_and_gateway_answers_send_nothing():
    registry = CollectorRegistry()
    logger = InferenceLogger(registry, gateway_url=lambda: None)
    logger.set_agents({BACKEND: CONFIG})
    logger.observe(exchange(backend="http://127.0.0.1:49999"))
    logger.observe(exchange(backend=None, status=503))
    assert logger.queue.qsize() == 0
    logger.observe(exchange(response=None))  # streamed response: the request is logged, the response counted lost
    assert logger.queue.qsize() == 1
    assert sample(registry, "inference_logger_events_dropped_total", namespace="lab", inferenceservice="iris",
                  reason="unbuffered_response") == 1


def test_a_cluster_dns_sink_is_reached_through_the_gateway_with_its_host():
    logger = InferenceLogger(CollectorRegistry(), gateway_url=lambda: "http://127.0.0.1:5555")
    url, headers = logger._target(CONFIG, "http://drift-receiver.lab.svc.cluster.local/log?x=1")
    assert (url, headers) == ("http://127.0.0.1:5555/log?x=1", {"Host": "drift-receiver.lab.svc.cluster.local"})
    assert logger._target(CONFIG, "http://127.0.0.1:7000/") == ("http://127.0.0.1:7000/", {})
