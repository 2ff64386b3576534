"""The gateway's request metrics under Envoy's cluster-stat names: what one exchange records, how it is exposed."""
from __future__ import annotations

import asyncio

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client.parser import text_string_to_metric_families

from lab_helpers.gateway.metrics import (DURATION_BUCKETS_MS, ENVOY_BUCKETS_MS, RequestMetrics, cluster_name,
                                         metrics_handler)
from lab_helpers.gateway.proxy import Exchange
from lab_helpers.gateway.routes import Backend, RouteTarget

BACKEND = Backend("http://127.0.0.1:41001")
CLUSTER = "lab/cilium-gateway-lab-gateway/lab_iris-predictor_80"


def exchange(status: int = 200, duration_s: float = 0.004, service: str = "iris-predictor",
             backend: Backend | None = BACKEND) -> Exchange:
    return Exchange(request_id="r", host="iris-lab.example.com", method="POST", path_qs="/v2/models/iris/infer",
                    remote="127.0.0.1", request_headers=CIMultiDictProxy(CIMultiDict()), request_body=b"{}",
                    target=RouteTarget(service=service, namespace="lab", revision="abc", backends=[BACKEND]),
                    backend=backend, status=status, duration_s=duration_s, response_body=b"{}")


def samples(metrics: RequestMetrics) -> dict[tuple, float]:
    """(sample name, sorted labels) -> value, parsed back from the exposition text."""
    text = asyncio.run(metrics_handler(metrics.registry)(make_mocked_request("GET", "/metrics"))).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def code(value: str, cluster: str = CLUSTER) -> tuple:
    return "envoy_cluster_upstream_rq", (("envoy_cluster_name", cluster), ("envoy_response_code", value))


def test_requests_are_counted_per_cluster_and_code_and_per_code_class():
    metrics = RequestMetrics()
    for _ in range(3):
        metrics.observe(exchange(200, 0.004))
    metrics.observe(exchange(400, 0.002))
    got = samples(metrics)
    assert got[code("200")] == 3 and got[code("400")] == 1
    assert got[("envoy_cluster_upstream_rq_xx", (("envoy_cluster_name", CLUSTER),
                                                  ("envoy_response_code_class", "4")))] == 1
    assert got[("envoy_cluster_upstream_rq_time_count", (("envoy_cluster_name", CLUSTER),))] == 4
    assert got[("envoy_cluster_upstream_rq_time_sum", (("envoy_cluster_name", CLUSTER),))] == 14.0


def test_time_is_in_milliseconds():
    metrics = RequestMetrics()
    metrics.observe(exchange(200, 0.0035))  # 3.5 ms: above the 3 ms bound, within 4 ms
    got = samples(metrics)
    bucket = lambda le: got[("envoy_cluster_upstream_rq_time_bucket", (("envoy_cluster_name", CLUSTER), ("le", le)))]
    assert bucket("3.0") == 0 and bucket("4.0") == 1 and bucket("+Inf") == 1


def test_buckets_resolve_the_labs_latencies_and_keep_every_envoy_bound():
    bounds = DURATION_BUCKETS_MS
    assert list(bounds) == sorted(set(bounds))
    lab_range = [b for b in bounds if 1 <= b <= 250]
    assert all(upper / lower <= 1.5 for lower, upper in zip(lab_range, lab_range[1:]))
    assert set(ENVOY_BUCKETS_MS) <= set(bounds)  # an le="25" query means the same on a cluster


def test_no_healthy_backend_is_an_upstream_503_but_the_gateways_own_answers_are_not_counted():
    metrics = RequestMetrics()
    metrics.observe(exchange(503, backend=None))
    metrics.observe(exchange(413, backend=None))
    metrics.observe(exchange(403, backend=None))
    got = samples(metrics)
    assert got[code("503")] == 1
    assert code("413") not in got and code("403") not in got


def test_a_canary_and_its_primary_are_two_clusters():
    metrics = RequestMetrics()
    metrics.observe(exchange(service="iris-rollout-primary"))
    metrics.observe(exchange(service="iris-rollout-canary", status=500))
    got = samples(metrics)
    assert got[code("200", "lab/cilium-gateway-lab-gateway/lab_iris-rollout-primary_80")] == 1
    assert got[code("500", "lab/cilium-gateway-lab-gateway/lab_iris-rollout-canary_80")] == 1
    target = RouteTarget(service="s", namespace="n", revision="r", port=8080)
    assert cluster_name(target, "kube-system/cilium-gateway-g") == "kube-system/cilium-gateway-g/n_s_8080"
