"""The gateway's Istio-named request metrics: what one exchange records and how it is exposed."""
from __future__ import annotations

import asyncio

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client.parser import text_string_to_metric_families

from lab_helpers.gateway.metrics import (DURATION_BUCKETS_MS, ENVOY_BUCKETS_MS, RequestMetrics, destination_workload,
                                         metrics_handler)
from lab_helpers.gateway.proxy import Exchange
from lab_helpers.gateway.routes import Backend, RouteTarget

BACKEND = Backend("http://127.0.0.1:41001")


def exchange(status: int = 200, duration_s: float = 0.004, service: str = "iris-predictor",
             backend: Backend | None = BACKEND, revision: str = "abc") -> Exchange:
    return Exchange(request_id="r", host="iris-lab.example.com", method="POST", path_qs="/v2/models/iris/infer",
                    remote="127.0.0.1", request_headers=CIMultiDictProxy(CIMultiDict()), request_body=b"{}",
                    target=RouteTarget(service=service, namespace="lab", revision=revision, backends=[BACKEND]),
                    backend=backend, status=status, duration_s=duration_s, response_body=b"{}")


def samples(metrics: RequestMetrics) -> dict[tuple, float]:
    """(sample name, sorted labels) -> value, parsed back from the exposition text."""
    text = asyncio.run(metrics_handler(metrics.registry)(make_mocked_request("GET", "/metrics"))).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def labels(reporter: str, code: str, workload: str = "iris-predictor", service: str = "iris-predictor") -> tuple:
    return tuple(sorted({"reporter": reporter, "destination_workload": workload,
                         "destination_workload_namespace": "lab", "destination_service_name": service,
                         "destination_canonical_revision": "abc", "response_code": code,
                         "request_protocol": "http"}.items()))


def test_an_answered_request_is_counted_by_the_source_and_destination_reporters():
    metrics = RequestMetrics()
    for _ in range(3):
        metrics.observe(exchange(200, 0.004))
    metrics.observe(exchange(400, 0.002))
    got = samples(metrics)
    for reporter in ("source", "destination"):
        assert got[("istio_requests_total", labels(reporter, "200"))] == 3
        assert got[("istio_requests_total", labels(reporter, "400"))] == 1
        assert got[("istio_request_duration_milliseconds_count", labels(reporter, "200"))] == 3
        assert got[("istio_request_duration_milliseconds_sum", labels(reporter, "200"))] == 12.0


def test_duration_is_in_milliseconds():
    metrics = RequestMetrics()
    metrics.observe(exchange(200, 0.0035))  # 3.5 ms: above the 3 ms bound, within 4 ms
    got = samples(metrics)
    bucket = lambda le: got[("istio_request_duration_milliseconds_bucket",
                             tuple(sorted((*labels("destination", "200"), ("le", le)))))]
    assert bucket("3.0") == 0 and bucket("4.0") == 1 and bucket("+Inf") == 1


def test_buckets_resolve_the_labs_latencies_and_keep_every_envoy_bound():
    bounds = DURATION_BUCKETS_MS
    assert list(bounds) == sorted(set(bounds))
    lab_range = [b for b in bounds if 1 <= b <= 250]
    assert all(upper / lower <= 1.5 for lower, upper in zip(lab_range, lab_range[1:]))
    assert set(ENVOY_BUCKETS_MS) <= set(bounds)  # an le="25" query means the same on a mesh


def test_a_request_the_gateway_answered_itself_has_no_destination_sample():
    metrics = RequestMetrics()
    metrics.observe(exchange(503, backend=None))
    got = samples(metrics)
    assert got[("istio_requests_total", labels("source", "503"))] == 1
    assert ("istio_requests_total", labels("destination", "503")) not in got


def test_workload_is_the_deployment_behind_the_service():
    assert destination_workload(exchange().target) == "iris-predictor"
    assert destination_workload(exchange(service="iris-predictor-primary").target) == "iris-predictor-primary"
    assert destination_workload(exchange(service="iris-predictor-canary").target) == "iris-predictor"
    metrics = RequestMetrics()
    metrics.observe(exchange(service="iris-predictor-canary"))
    got = samples(metrics)
    assert got[("istio_requests_total", labels("destination", "200", "iris-predictor", "iris-predictor-canary"))] == 1


def test_each_instance_has_its_own_registry():
    first, second = RequestMetrics(), RequestMetrics()
    first.observe(exchange())
    assert ("istio_requests_total", labels("source", "200")) in samples(first)
    assert ("istio_requests_total", labels("source", "200")) not in samples(second)


def test_the_handler_serves_the_prometheus_text_format():
    metrics = RequestMetrics()
    response = asyncio.run(metrics_handler(metrics.registry)(make_mocked_request("GET", "/metrics")))
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")


def test_revisions_of_one_service_are_counted_apart():
    metrics = RequestMetrics()
    for revision in ("old", "new", "new"):
        metrics.observe(exchange(revision=revision))
    counts = {dict(labels)["destination_canonical_revision"]: value for (name, labels), value in samples(metrics).items()
              if name == "istio_requests_total" and dict(labels)["reporter"] == "destination"}
    assert counts == {"old": 1, "new": 2}
