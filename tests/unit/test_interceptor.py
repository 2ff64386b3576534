"""The HTTP add-on interceptor of the local gateway: InterceptorRoute routing, holding at zero, 504, overflow, push."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import make_mocked_request

from lab_helpers.gateway.interceptor import Interceptor, parse_duration
from lab_helpers.gateway.routes import RouteTable
from lab_helpers.local.routing import RoutingLoop
from lab_helpers.local.store import Store

HOST = "iris-s2z-lab.example.com"


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store.sqlite")
    template = {"metadata": {"labels": {"app": "iris-s2z-predictor"}}, "spec": {"containers": [{"name": "c"}]}}
    store.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "iris-s2z-predictor",
                                                                          "namespace": "lab"},
                 "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "iris-s2z-predictor"}},
                          "template": template}})
    store.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "iris-s2z-predictor", "namespace": "lab"},
                 "spec": {"selector": {"app": "iris-s2z-predictor"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    return store


def interceptor_route(store, readiness="1s"):
    store.apply({"apiVersion": "http.keda.sh/v1beta1", "kind": "InterceptorRoute",
                 "metadata": {"name": "iris-s2z", "namespace": "lab"},
                 "spec": {"target": {"service": "iris-s2z-predictor", "port": 80},
                          "rules": [{"hosts": [HOST]}], "scalingMetric": {"concurrency": {"targetValue": 10}},
                          "timeouts": {"readiness": readiness}}})


def ready_pod(store, port=41010):
    store.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "lab",
                                                                  "labels": {"app": "iris-s2z-predictor"}},
                 "spec": {}})
    store.set_status("Pod", "lab", "p1", {"phase": "Running", "lab": {"ports": {"8080": port}},
                                          "conditions": [{"type": "Ready", "status": "True"}]})


def setup(store, readiness="1s", **options):
    interceptor_route(store, readiness)
    table, pushed = RouteTable(), []
    interceptor = Interceptor(table, on_pending=pushed.append, in_flight=lambda host: 0, **options)
    return table, interceptor, RoutingLoop(store, table, interceptor), pushed


def request():
    return make_mocked_request("POST", "/v2/models/iris-s2z/infer", headers={"Host": HOST})


def test_an_interceptor_route_routes_its_host_to_the_target_service_and_is_intercepted(store):
    table, interceptor, loop, _ = setup(store)
    asyncio.run(loop.sync())
    route = {route.host: route for route in table.routes()}[HOST]  # beside the Service's cluster DNS name
    assert route.targets[0].service == "iris-s2z-predictor"
    assert interceptor.route_for(HOST) is not None


def test_a_held_request_is_released_when_the_first_pod_is_ready_and_pushes_once(store):
    table, interceptor, loop, pushed = setup(store, readiness="30s")

    async def scenario():
        await loop.sync()
        target = table.pick_target(HOST)
        held = [asyncio.create_task(interceptor.hold(request(), target)) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert interceptor.pending(("InterceptorRoute", "lab", "iris-s2z")) == 3 and not any(h.done() for h in held)
        ready_pod(store)
        await loop.sync()
        return await asyncio.wait_for(asyncio.gather(*held), 1)

    assert asyncio.run(scenario()) == [None, None, None]  # None: go on and forward
    assert pushed == [("InterceptorRoute", "lab", "iris-s2z")]                # the first held request pushes, not every one
    assert interceptor.pending(("InterceptorRoute", "lab", "iris-s2z")) == 0


def test_a_request_held_past_the_readiness_timeout_gets_504_naming_the_route(store):
    table, interceptor, loop, _ = setup(store, readiness="100ms")

    async def scenario():
        await loop.sync()
        return await interceptor.hold(request(), table.pick_target(HOST))

    response = asyncio.run(scenario())
    assert response.status == 504
    assert b"InterceptorRoute lab/iris-s2z" in response.body and b"runbooks/scale-to-zero-failing.md" in response.body


def test_held_requests_are_bounded_per_route_and_the_overflow_gets_503_with_retry_after(store):
    table, interceptor, loop, _ = setup(store, readiness="30s", max_held_per_route=2)

    async def scenario():
        await loop.sync()
        target = table.pick_target(HOST)
        held = [asyncio.create_task(interceptor.hold(request(), target)) for _ in range(2)]
        await asyncio.sleep(0.05)
        overflow = await interceptor.hold(request(), target)
        for task in held:
            task.cancel()
        return overflow

    response = asyncio.run(scenario())
    assert response.status == 503 and response.headers["Retry-After"] == "1"


def test_a_host_with_a_ready_pod_is_not_held(store):
    table, interceptor, loop, pushed = setup(store)
    ready_pod(store)

    async def scenario():
        await loop.sync()
        return await interceptor.hold(request(), table.pick_target(HOST))

    assert asyncio.run(scenario()) is None and pushed == []


@pytest.mark.parametrize("text,seconds", [("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), (None, 0.0), ("", 0.0)])
def test_durations_as_the_crd_takes_them(text, seconds):
    assert parse_duration(text) == seconds


def test_a_bad_duration_says_what_is_expected():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_interceptor_metrics_use_the_add_ons_names_and_labels(store):
    from multidict import CIMultiDict, CIMultiDictProxy
    from prometheus_client import CollectorRegistry, generate_latest

    from lab_helpers.gateway.interceptor_metrics import InterceptorMetrics
    from lab_helpers.gateway.proxy import Exchange
    from lab_helpers.gateway.routes import RouteTarget

    table, interceptor, loop, _ = setup(store)
    interceptor.in_flight = lambda host: 2 if host == HOST else 0
    asyncio.run(loop.sync())
    registry = CollectorRegistry()
    metrics = InterceptorMetrics(registry, interceptor)
    for host, status in ((HOST, 200), (HOST, 504), ("other.example.com", 200)):
        metrics.observe(Exchange("id", host, "POST", "/v2/models/iris-s2z/infer", None,
                                 CIMultiDictProxy(CIMultiDict()), b"", RouteTarget("s", "lab", "r"), None, status,
                                 0.01, None))
    text = generate_latest(registry).decode()
    assert ('interceptor_request_count_total{code="200",method="POST",route_name="iris-s2z",'
            'route_namespace="lab"} 1.0') in text
    assert 'code="504"' in text and "other.example.com" not in text
    assert 'interceptor_request_concurrency{route_name="iris-s2z",route_namespace="lab"} 2.0' in text


def http_scaled_object(store, hosts=(HOST,), annotations=None):
    from lab_helpers.manifests.loading import load_documents
    from lab_helpers.paths import manifests_dir

    (doc,) = load_documents(manifests_dir() / "autoscaling" / "iris-s2z-httpscaledobject.yaml",
                            {"NAMESPACE": "lab", "S2Z_COOLDOWN_SECONDS": "20"})
    obj = doc.obj
    obj["spec"]["hosts"] = list(hosts)
    obj["spec"]["timeouts"] = {"conditionWait": "5s"}
    if annotations:
        obj["metadata"]["annotations"] = annotations
    return store.apply(obj)


def test_the_deprecated_http_scaled_object_is_routed_and_held_too(store):
    http_scaled_object(store)
    table = RouteTable()
    interceptor = Interceptor(table, on_pending=lambda key: None, in_flight=lambda host: 0)
    asyncio.run(RoutingLoop(store, table, interceptor).sync())
    route = interceptor.route_for(HOST)
    assert (route.kind, route.name, route.readiness_timeout_s) == ("HTTPScaledObject", "iris-s2z", 5.0)
    assert table.routes()[0].targets[0].service == "iris-s2z-predictor"


def test_an_interceptor_route_wins_a_host_an_http_scaled_object_also_claims(store):
    http_scaled_object(store)
    interceptor_route(store)
    table = RouteTable()
    interceptor = Interceptor(table, on_pending=lambda key: None, in_flight=lambda host: 0)
    asyncio.run(RoutingLoop(store, table, interceptor).sync())
    assert interceptor.route_for(HOST).kind == "InterceptorRoute"
    assert [r.kind for r in interceptor.routes()] == ["InterceptorRoute"]


def test_the_add_on_operator_writes_the_scaled_object_of_an_http_scaled_object(store, tmp_path):
    from lab_helpers.local.controllers.base import Context
    from lab_helpers.local.controllers.keda_http import HTTPScaledObjectController

    httpso = http_scaled_object(store)
    controller = HTTPScaledObjectController(Context(store, tmp_path))
    asyncio.run(controller.reconcile(httpso))
    so = store.get("ScaledObject", "lab", "iris-s2z")
    assert so["metadata"]["ownerReferences"][0]["kind"] == "HTTPScaledObject"
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"], so["spec"]["cooldownPeriod"],
            so["spec"]["pollingInterval"]) == (0, 2, 20, 15)
    assert so["spec"]["triggers"][0]["metadata"]["httpScaledObject"] == "iris-s2z"
    skipped = http_scaled_object(store, annotations={"httpscaledobject.keda.sh/skip-scaledobject-creation": "true"})
    asyncio.run(controller.reconcile(skipped))
    assert store.find("ScaledObject", "lab", "iris-s2z") is None


def test_a_route_to_a_missing_service_holds_then_answers_504_naming_the_service(store):
    store.delete("Service", "lab", "iris-s2z-predictor")
    table, interceptor, loop, _ = setup(store, readiness="50ms")

    async def scenario():
        await loop.sync()
        return await interceptor.hold(request(), table.pick_target(HOST))

    response = asyncio.run(scenario())
    assert response.status == 504
    assert b"Service lab/iris-s2z-predictor does not exist" in response.body
    ready = store.get("InterceptorRoute", "lab", "iris-s2z")["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Reconciled")
