"""The local Cilium agent from the store (destinations, endpoints, Valid condition), the enforcer's idea of who
is calling, address allocation, the flow ring and the curl status of a caller pod."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from lab_helpers.local.controllers.cilium import CRD_NAME, CiliumAgent
from lab_helpers.local.store import Store
from lab_helpers.policy.callers import parse_curl_status
from lab_helpers.policy.enforcement import PolicyEnforcer
from lab_helpers.policy.flows import Flow, FlowLog
from lab_helpers.policy.identity import HOST, INGRESS_GATEWAY, KEDA_INTERCEPTOR, WORLD, Identity, allocate_address

LABELS = {"app": "isvc.iris-predictor", "serving.kserve.io/inferenceservice": "iris", "component": "predictor"}
POLICY = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "p", "namespace": "lab"},
          "spec": {"endpointSelector": {"matchLabels": {"component": "predictor"}},
                   "ingress": [{"fromEndpoints": [{"matchLabels": {"inference-client": "iris"}}]}]}}


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "store.sqlite")
    for name in ("lab", "other"):
        store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"team": name}}})
    store.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "iris-predictor", "namespace": "lab"},
                 "spec": {"selector": {"matchLabels": {"app": LABELS["app"]}}, "template": {
                     "metadata": {"labels": LABELS},
                     "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]}}}})
    store.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "iris-predictor", "namespace": "lab"},
                 "spec": {"selector": {"app": LABELS["app"]}, "ports": [{"port": 80, "targetPort": "http"}]}})
    return store


def agent(store: Store) -> CiliumAgent:
    return CiliumAgent(store, PolicyEnforcer(FlowLog(), is_intercepted=lambda host: host == "s2z.example.com"),
                       FlowLog())


def install_cilium(store: Store) -> None:
    store.apply({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                 "metadata": {"name": CRD_NAME}, "spec": {}})


def test_nothing_is_enforced_until_cilium_is_installed(store: Store) -> None:
    store.apply(POLICY)
    assert agent(store).state().destinations == {}
    assert "status" not in store.get("CiliumNetworkPolicy", "lab", "p")


def test_each_service_is_a_destination_with_the_policies_selecting_its_pods(store: Store) -> None:
    install_cilium(store)
    store.apply(POLICY)
    store.apply(dict(POLICY, metadata={"name": "elsewhere", "namespace": "other"}))
    state = agent(store).state()
    destination, policies = state.destinations[("lab", "iris-predictor")]
    assert (destination.port, destination.labels, destination.port_names) == (8080, LABELS, {"http": 8080})
    assert [p.ref for p in policies] == ["CiliumNetworkPolicy lab/p"]  # a policy selects in its own namespace
    (valid,) = store.get("CiliumNetworkPolicy", "lab", "p")["status"]["conditions"]
    assert (valid["type"], valid["status"], valid["message"]) == ("Valid", "True", "Policy validation succeeded")


def test_an_invalid_policy_is_valid_false_and_selects_nothing(store: Store) -> None:
    install_cilium(store)
    store.apply(dict(POLICY, spec={**POLICY["spec"], "egress": [{"toEndpoints": [{}]}]}))
    _, policies = agent(store).state().destinations[("lab", "iris-predictor")]
    assert policies == ()
    (valid,) = store.get("CiliumNetworkPolicy", "lab", "p")["status"]["conditions"]
    assert valid["status"] == "False" and valid["message"].startswith("spec.egress: not enforced")


def test_registration_gives_each_label_set_its_own_stable_address_and_identity(store: Store) -> None:
    install_cilium(store)
    cilium = agent(store)
    first = cilium.register("lab", {"inference-client": "iris"})
    second = cilium.register("other", {"inference-client": "iris"})
    again = cilium.register("lab", {"inference-client": "iris"})
    addresses = [e["status"]["networking"]["addressing"][0]["ipv4"] for e in (first, second, again)]
    assert addresses == ["127.0.0.2", "127.0.0.3", "127.0.0.2"]
    assert "k8s:io.kubernetes.pod.namespace=lab" in first["status"]["identity"]["labels"]
    # The ipcache is rebuilt from the store (a restarted agent has it), with the namespace's labels.
    assert agent(store).state().endpoints["127.0.0.3"] == Identity("other", {"inference-client": "iris"},
                                                                   {"team": "other"})
    with pytest.raises(LookupError, match='namespaces "nowhere" not found'):
        cilium.register("nowhere", {})


def test_sync_installs_the_state_into_the_enforcer(store: Store) -> None:
    install_cilium(store)
    store.apply(POLICY)
    cilium = agent(store)
    asyncio.run(cilium.sync())
    assert ("lab", "iris-predictor") in cilium.enforcer.state.destinations


@pytest.mark.parametrize("host,address,expected", [
    ("iris-lab.example.com", "127.0.0.2", INGRESS_GATEWAY),      # through the ingress: its identity
    ("s2z.example.com", "127.0.0.2", KEDA_INTERCEPTOR),          # through the interceptor: its identity
    ("iris-predictor.lab.svc.cluster.local", "127.0.0.1", HOST),  # from the node itself
    ("iris-predictor.lab.svc.cluster.local", "127.0.0.77", WORLD),  # an address no endpoint has
])
def test_who_the_predictor_sees(host: str, address: str, expected: Identity) -> None:
    enforcer = PolicyEnforcer(FlowLog(), is_intercepted=lambda h: h == "s2z.example.com")
    assert enforcer.source_of(host, address) == expected


def test_a_request_to_an_unknown_destination_is_not_policed_and_not_logged() -> None:
    flows = FlowLog()
    enforcer = PolicyEnforcer(flows, is_intercepted=lambda h: False)
    request = SimpleNamespace(host="x.lab.svc.cluster.local", remote="127.0.0.2", method="GET", raw_path="/",
                              headers={})
    assert enforcer.admit(request, SimpleNamespace(namespace="lab", service="x")) is None
    assert flows.recent() == []


def test_addresses_skip_the_taken_ones_and_never_use_the_nodes() -> None:
    assert allocate_address([]) == "127.0.0.2"
    assert allocate_address(["127.0.0.2", "127.0.0.3", "127.0.0.5"]) == "127.0.0.4"
    assert allocate_address([f"127.0.0.{i}" for i in range(2, 256)]) == "127.0.1.0"


def test_the_flow_ring_keeps_the_newest_and_filters_by_namespace() -> None:
    ring = FlowLog(capacity=3)
    for i in range(5):
        ring.record(1_800_000_000 + i, "FORWARDED", "L3_L4", "s", "a", "lab/x" if i % 2 else "other/y", 8080)
    assert [f.time for f in ring.recent()] == [f"2027-01-15T08:00:0{i}.000+00:00" for i in (2, 3, 4)]
    assert [f.time[18] for f in ring.recent("lab")] == ["3"] and [f.time[18] for f in ring.recent(last=1)] == ["4"]
    assert ring.recent()[0] == Flow("2027-01-15T08:00:02.000+00:00", "FORWARDED", "L3_L4", "s", "a", "other/y", 8080)


@pytest.mark.parametrize("log,status", [("200", 200), ("2026-12-02T10:00:00Z 403", 403), ("000", None), ("", None)])
def test_curl_status_from_the_pod_log(log: str, status: int | None) -> None:
    assert parse_curl_status(log).status == status


def test_the_policy_benchmark_times_every_case_on_the_lab_policy(capsys: pytest.CaptureFixture[str]) -> None:
    from lab_helpers.bench.policy import CASES, main

    assert main(["--calls", "20", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert [line.split("  ")[1].strip() for line in lines] == list(CASES)
    assert all(float(line.split()[-2]) > 0 for line in lines)


def test_the_gateway_benchmark_with_policy_checks_the_lab_policy_on_its_route() -> None:
    from dataclasses import replace

    from aiohttp.test_utils import make_mocked_request

    from lab_helpers.bench.gateway import MODEL_NAME, ROUTE_HOST
    from lab_helpers.bench.policy import DESTINATION, TARGET, lab_policy_enforcer

    enforcer = lab_policy_enforcer(replace(DESTINATION, namespace="bench", service=MODEL_NAME))
    target = replace(TARGET, namespace="bench", service=MODEL_NAME)
    infer = make_mocked_request("POST", f"/v2/models/{MODEL_NAME}/infer", headers={"Host": ROUTE_HOST})
    metrics = make_mocked_request("GET", "/metrics", headers={"Host": ROUTE_HOST})
    assert enforcer.admit(infer, target) is None and enforcer.admit(metrics, target).status == 403
