"""Scale-to-zero on the local target with real processes: KEDA + the HTTP add-on interceptor, and the trap."""
from __future__ import annotations

import time

import pytest

import lab_helpers
from lab_helpers.errors import ManifestError
from lab_helpers.inference import post
from lab_helpers.paths import manifests_dir
from lab_helpers.scaling.cold_trials import ScaleToZeroService, run_trials, scale_to_zero_objects
from lab_helpers.scaling.coldstart import MOMENTS
from lab_helpers.scaling.recorder import ReplicaRecorder, replica_sequence

pytestmark = pytest.mark.integration
REQUEST = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [[6.8, 2.8, 4.8, 1.4]]}]}


@pytest.fixture(scope="module")
def lab(local_home):
    lab = lab_helpers.connect("local")
    lab.apply(manifests_dir() / "flux")
    # Before KEDA is installed there is no ScaledObject kind, as on a cluster without the CRD.
    with pytest.raises(ManifestError, match='no matches for kind "ScaledObject"'):
        lab.apply(s2z_documents("early", "file:///nowhere", "1s")[2])
    lab.apply(manifests_dir() / "platform" / "keda.yaml")
    lab.wait_ready("HelmRelease", "keda-add-ons-http", namespace="keda", timeout=60)
    return lab


def s2z_documents(name: str, storage_uri: str, readiness: str) -> list[dict]:
    """The notebook's iris-s2z.yaml with lab timings, renamed so several services can coexist."""
    return scale_to_zero_objects(name, {"NAMESPACE": "lab", "IRIS_SKLEARN_STORAGE_URI": storage_uri,
                                        "S2Z_COOLDOWN_SECONDS": "3", "S2Z_POLLING_SECONDS": "1",
                                        "S2Z_READINESS_TIMEOUT": readiness})


def infer(lab, name: str, timeout: float = 60):
    base_url, host = lab.interceptor_endpoint(name)
    return post(base_url, host, f"/v2/models/{name}/infer", REQUEST, timeout=timeout)


def test_zero_then_a_held_request_answered_200_then_zero_after_the_cooldown(lab, sklearn_dir):
    with ReplicaRecorder(lab, "iris-s2z-predictor", interval=0.1) as recorder:
        lab.apply(s2z_documents("iris-s2z", sklearn_dir.as_uri(), "60s"))
        recorder.wait_for(0, timeout=30)                  # never active: to 0 at the first poll
        response = infer(lab, "iris-s2z")
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == [1]
        recorder.wait_for(0, timeout=30)                  # idle for the 3 s cooldown: back to 0
    assert replica_sequence(recorder.frame())[-3:] == [0, 1, 0]
    reasons = [e["reason"] for e in lab.events("ScaledObject", "iris-s2z", children=False)]
    assert "KEDAScaleTargetActivated" in reasons and reasons[-1] == "KEDAScaleTargetDeactivated"


def test_a_pod_that_never_gets_ready_answers_the_held_request_504_at_the_readiness_timeout(lab, tmp_path):
    lab.apply(s2z_documents("iris-broken", (tmp_path / "no-such-model").as_uri(), "2s"))
    with ReplicaRecorder(lab, "iris-broken-predictor", interval=0.1) as recorder:
        recorder.wait_for(0, timeout=30)
    started = time.monotonic()
    response = infer(lab, "iris-broken")
    assert response.status_code == 504
    assert "readiness timeout (2s)" in response.json()["error"]
    assert time.monotonic() - started < 30
    assert lab.get("Deployment", "iris-broken-predictor")["spec"]["replicas"] == 1  # KEDA did wake it


def test_the_trap_reaches_zero_and_never_wakes_up(lab, sklearn_dir):
    lab.apply(manifests_dir() / "platform" / "kube-prometheus-stack.yaml")
    lab.wait_ready("HelmRelease", "kube-prometheus-stack", namespace="monitoring", timeout=60)
    lab.apply(manifests_dir() / "autoscaling" / "iris-trap.yaml", {"IRIS_SKLEARN_STORAGE_URI": sklearn_dir.as_uri()})
    scaled = lab.get("ScaledObject", "iris-trap-predictor")
    assert scaled["spec"]["minReplicaCount"] == 0 and "cooldownPeriod" not in scaled["spec"]
    with ReplicaRecorder(lab, "iris-trap-predictor", interval=0.2) as recorder:
        recorder.wait_for(0, timeout=60)
        base_url, host = lab.endpoint("iris-trap")
        answers = {post(base_url, host, "/v2/models/iris-trap/infer", REQUEST, timeout=10).status_code
                   for _ in range(3)}
        asked = time.time()
        deadline = time.monotonic() + 45                     # KServe writes no pollingInterval: KEDA's 30 s
        while lab.get("ScaledObject", "iris-trap-predictor")["status"]["lab"]["lastPoll"] <= asked:
            assert time.monotonic() < deadline, "KEDA did not poll the trap's trigger within 45 s"
            time.sleep(0.5)
    assert answers == {503}                                  # nobody holds them
    assert replica_sequence(recorder.frame())[-1] == 0       # and the poll after them does not wake it
    active = {c["type"]: c for c in lab.get("ScaledObject", "iris-trap-predictor")["status"]["conditions"]}["Active"]
    assert (active["status"], active["reason"]) == ("False", "ScalerNotActive")


def test_a_burst_at_zero_beyond_the_held_bound_gets_503_with_retry_after_at_once():
    """The gateway and its interceptor on a real socket: 2 requests held, the 3rd refused, nothing else touched."""
    import asyncio

    import aiohttp

    from lab_helpers.gateway import Gateway, Route, RouteTable, RouteTarget
    from lab_helpers.gateway.interceptor import InterceptedRoute, Interceptor

    async def scenario():
        table = RouteTable([Route("cold.example.com", [RouteTarget("cold-predictor", "lab", "r1")])])
        gateway: Gateway
        interceptor = Interceptor(table, on_pending=lambda key: None,
                                  in_flight=lambda host: gateway.in_flight(host), max_held_per_route=2)
        interceptor.set_routes([InterceptedRoute("lab", "cold", ("cold.example.com",), 2.0)])
        gateway = Gateway(table, filters=[interceptor.hold])
        port = await gateway.start()
        url = f"http://127.0.0.1:{port}/v2/models/cold/infer"
        async with aiohttp.ClientSession() as session:
            async def call():
                async with session.post(url, json=REQUEST, headers={"Host": "cold.example.com"}) as response:
                    return response.status, response.headers.get("Retry-After")

            held = [asyncio.create_task(call()) for _ in range(2)]
            while interceptor.pending(("InterceptorRoute", "lab", "cold")) < 2:
                await asyncio.sleep(0.01)
            refused = await call()
            still_held = not any(task.done() for task in held)  # the refusal did not wait for them
            assert interceptor.concurrency(("InterceptorRoute", "lab", "cold")) == 2
            held_answers = await asyncio.gather(*held)           # 504 at their 2 s readiness timeout
        await gateway.stop()
        return refused, still_held, held_answers

    refused, still_held, held_answers = asyncio.run(scenario())
    assert refused == (503, "1") and still_held
    assert [status for status, _ in held_answers] == [504, 504]


def test_one_real_cold_start_is_taken_apart_phase_by_phase(lab, sklearn_dir):
    lab.apply(s2z_documents("iris-cold", sklearn_dir.as_uri(), "60s"))
    service = ScaleToZeroService("iris-cold", "iris-cold", "iris-cold", "iris-cold")
    frame = run_trials(lab, service, REQUEST, trials=1, warm=3, zero_timeout=60)
    cold = frame[frame["kind"] == "cold"].iloc[0]
    assert (cold["status"], cold["prediction"]) == (200, [1])
    recorded = [moment for moment in MOMENTS if moment in frame.columns and cold[moment] == cold[moment]]
    assert recorded == list(MOMENTS)          # every moment has a record on the local target
    assert 0 < cold["runtime_s"] < cold["total_s"] and cold["overhead_s"] > 0
    assert sorted(frame["kind"].unique()) == ["cold", "warm", "warm, direct to pod"]
    assert (frame["status"] == 200).all()
