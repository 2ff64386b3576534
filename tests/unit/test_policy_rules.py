"""Policy matching, table-driven: selectors (matchLabels, matchExpressions, namespaces), ports, L7 regexes,
policies adding up, default deny, and what the local target refuses to enforce."""
from __future__ import annotations

from typing import Any

import pytest

from lab_helpers.policy.identity import HOST, INGRESS_GATEWAY, WORLD, Identity
from lab_helpers.policy.rules import Destination, PolicyError, Selector, compile_policy, decide

PREDICTOR = Destination("lab", "iris-predictor", {"serving.kserve.io/inferenceservice": "iris",
                                                  "component": "predictor", "app": "isvc.iris-predictor"},
                        8080, {"http": 8080})
SCORER = Identity("lab", {"inference-client": "iris"})
SCORER_ELSEWHERE = Identity("other", {"inference-client": "iris"})
STRANGER = Identity("lab", {"app": "notebook"})
INFER = ("POST", "/v2/models/iris/infer")


def cnp(ingress: list[dict[str, Any]] | None, name: str = "p", selector: dict[str, Any] | None = None,
        **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"endpointSelector": selector or {"matchLabels": {"component": "predictor"}}, **extra}
    if ingress is not None:
        spec["ingress"] = ingress
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": name, "namespace": "lab"}, "spec": spec}


def l7(*rules: dict[str, str], port: str = "8080") -> list[dict[str, Any]]:
    return [{"ports": [{"port": port, "protocol": "TCP"}], "rules": {"http": list(rules)}}]


def verdict(objs: list[dict[str, Any]], source: Identity, request: tuple[str, str] = INFER,
            destination: Destination = PREDICTOR, headers: dict[str, str] | None = None):
    policies = [p for obj in objs for p in compile_policy(obj) if p.selects(destination.namespace, destination.labels)]
    return decide(policies, source, destination, request[0], request[1], "iris-predictor.lab.svc.cluster.local",
                  headers or {})


def outcome(v) -> str:
    return "allow" if v.allowed else ("403" if v.layer == "L7" else "drop")


FROM_SCORER = [{"fromEndpoints": [{"matchLabels": {"inference-client": "iris"}}]}]

CASES = [
    # (what, policies, source, request, expected)
    ("no policy selects the pod: everything passes", [], STRANGER, INFER, "allow"),
    ("a policy selecting another pod leaves this one open",
     [cnp(FROM_SCORER, selector={"matchLabels": {"component": "transformer"}})], STRANGER, INFER, "allow"),
    ("selected with an empty ingress list: default deny", [cnp([])], SCORER, INFER, "drop"),
    ("selected by a policy without an ingress section: ingress not enforced", [cnp(None)], STRANGER, INFER,
     "allow"),
    ("matchLabels admits the labelled caller", [cnp(FROM_SCORER)], SCORER, INFER, "allow"),
    ("matchLabels drops another caller", [cnp(FROM_SCORER)], STRANGER, INFER, "drop"),
    ("a selector without a namespace label selects only the policy's namespace",
     [cnp(FROM_SCORER)], SCORER_ELSEWHERE, INFER, "drop"),
    ("k8s:io.kubernetes.pod.namespace widens it to that namespace",
     [cnp([{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "other",
                                               "k8s:inference-client": "iris"}}]}])], SCORER_ELSEWHERE, INFER,
     "allow"),
    ("matchExpressions In", [cnp([{"fromEndpoints": [{"matchExpressions": [
        {"key": "inference-client", "operator": "In", "values": ["iris", "batch"]}]}]}])], SCORER, INFER, "allow"),
    ("matchExpressions NotIn", [cnp([{"fromEndpoints": [{"matchExpressions": [
        {"key": "inference-client", "operator": "NotIn", "values": ["iris"]}]}]}])], SCORER, INFER, "drop"),
    ("matchExpressions Exists", [cnp([{"fromEndpoints": [{"matchExpressions": [
        {"key": "any:inference-client", "operator": "Exists"}]}]}])], SCORER, INFER, "allow"),
    ("matchExpressions DoesNotExist", [cnp([{"fromEndpoints": [{"matchExpressions": [
        {"key": "inference-client", "operator": "DoesNotExist"}]}]}])], STRANGER, INFER, "allow"),
    ("matchExpressions on the namespace label", [cnp([{"fromEndpoints": [{"matchExpressions": [
        {"key": "k8s:io.kubernetes.pod.namespace", "operator": "In", "values": ["other", "third"]}]}]}])],
     SCORER_ELSEWHERE, INFER, "allow"),
    ("namespace labels are part of the identity", [cnp([{"fromEndpoints": [{"matchLabels": {
        "k8s:io.kubernetes.pod.namespace": "other", "k8s:io.cilium.k8s.namespace.labels.team": "risk"}}]}])],
     Identity("other", {}, {"team": "risk"}), INFER, "allow"),
    ("an empty selector selects every pod of the namespace, not what is outside the cluster",
     [cnp([{"fromEndpoints": [{}]}])], WORLD, INFER, "drop"),
    ("an empty selector selects every pod of the namespace", [cnp([{"fromEndpoints": [{}]}])], STRANGER, INFER,
     "allow"),
    ("the node itself always reaches its pods (allow-localhost)", [cnp([])], HOST, INFER, "allow"),
    ("fromEntities all admits the world", [cnp([{"fromEntities": ["all"]}])], WORLD, INFER, "allow"),
    ("fromEntities cluster does not", [cnp([{"fromEntities": ["cluster"]}])], WORLD, INFER, "drop"),
    ("a rule without from* admits every source on its ports",
     [cnp([{"toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}])], WORLD, INFER, "allow"),
    ("the wrong port drops", [cnp([{**FROM_SCORER[0], "toPorts": [{"ports": [{"port": "9081"}]}]}])],
     SCORER, INFER, "drop"),
    ("a port range covers 8080", [cnp([{**FROM_SCORER[0], "toPorts": [{"ports": [
        {"port": "8000", "endPort": 8100, "protocol": "TCP"}]}]}])], SCORER, INFER, "allow"),
    ("a named port resolves on the pod", [cnp([{**FROM_SCORER[0], "toPorts": [{"ports": [{"port": "http"}]}]}])],
     SCORER, INFER, "allow"),
    ("UDP only does not cover a TCP request", [cnp([{**FROM_SCORER[0], "toPorts": [{"ports": [
        {"port": "8080", "protocol": "UDP"}]}]}])], SCORER, INFER, "drop"),
    ("L7: method and path match", [cnp([{**FROM_SCORER[0], "toPorts": l7(
        {"method": "POST", "path": "/v2/models/[^/]+/infer"})}])], SCORER, INFER, "allow"),
    ("L7: another path is a 403", [cnp([{**FROM_SCORER[0], "toPorts": l7(
        {"method": "POST", "path": "/v2/models/[^/]+/infer"})}])], SCORER, ("POST", "/v2/repository/models/iris/unload"),
     "403"),
    ("L7: the path regex must match the whole path", [cnp([{**FROM_SCORER[0], "toPorts": l7(
        {"path": "/v2/models/iris"})}])], SCORER, ("GET", "/v2/models/iris/ready"), "403"),
    ("L7: the query string is part of :path", [cnp([{**FROM_SCORER[0], "toPorts": l7(
        {"path": "/v2/models/iris/infer"})}])], SCORER, ("POST", "/v2/models/iris/infer?debug=1"), "403"),
    ("L7: the method regex must match the whole method", [cnp([{**FROM_SCORER[0], "toPorts": l7(
        {"method": "GET|HEAD"})}])], SCORER, ("GETX", "/v2"), "403"),
    ("L7: a required header", [cnp([{**FROM_SCORER[0], "toPorts": l7({"headers": ["X-Team: risk"]})}])],
     SCORER, INFER, "403"),
    ("L7 rules do not admit a caller L3 drops", [cnp([{**FROM_SCORER[0], "toPorts": l7({"method": "POST"})}])],
     STRANGER, INFER, "drop"),
    ("policies add up: the second admits what the first drops",
     [cnp(FROM_SCORER, name="a"), cnp([{"fromEndpoints": [{"matchLabels": {"app": "notebook"}}]}], name="b")],
     STRANGER, INFER, "allow"),
    ("policies add up at L7: either policy's http rules admit",
     [cnp([{**FROM_SCORER[0], "toPorts": l7({"method": "GET"})}], name="a"),
      cnp([{**FROM_SCORER[0], "toPorts": l7({"method": "POST"})}], name="b")], SCORER, INFER, "allow"),
    ("an L3/L4 rule for the same caller and port switches the other's L7 rules off",
     [cnp([{**FROM_SCORER[0], "toPorts": l7({"method": "GET"})}], name="a"),
      cnp([{**FROM_SCORER[0], "toPorts": [{"ports": [{"port": "8080"}]}]}], name="b")], SCORER, INFER, "allow"),
    ("enableDefaultDeny.ingress false: selecting does not deny",
     [cnp(FROM_SCORER, enableDefaultDeny={"ingress": False})], STRANGER, INFER, "allow"),
    ("the ingress gateway's identity is a pod like any other",
     [cnp([{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "istio-system",
                                               "istio": "ingressgateway"}}]}])], INGRESS_GATEWAY, INFER, "allow"),
]


@pytest.mark.parametrize("what,objs,source,request_,expected", CASES, ids=[c[0] for c in CASES])
def test_cilium_network_policy(what: str, objs: list, source: Identity, request_: tuple[str, str],
                               expected: str) -> None:
    assert outcome(verdict(objs, source, request_)) == expected


def network_policy(ingress: list[dict[str, Any]] | None, policy_types: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": {"component": "predictor"}}}
    if ingress is not None:
        spec["ingress"] = ingress
    if policy_types is not None:
        spec["policyTypes"] = policy_types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "np", "namespace": "lab"}, "spec": spec}


NP_CASES = [
    ("no ingress rules: default deny", network_policy(None), SCORER, "drop"),
    ("Egress only: ingress not enforced", network_policy(None, ["Egress"]), STRANGER, "allow"),
    ("podSelector: same namespace", network_policy([{"from": [{"podSelector": {"matchLabels": {
        "inference-client": "iris"}}}]}]), SCORER, "allow"),
    ("podSelector: not another namespace", network_policy([{"from": [{"podSelector": {"matchLabels": {
        "inference-client": "iris"}}}]}]), SCORER_ELSEWHERE, "drop"),
    ("namespaceSelector AND podSelector", network_policy([{"from": [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}},
        "podSelector": {"matchExpressions": [{"key": "inference-client", "operator": "Exists"}]}}]}]),
     SCORER_ELSEWHERE, "allow"),
    ("namespaceSelector alone admits any pod there", network_policy([{"from": [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "lab"}}}]}]), STRANGER, "allow"),
    ("a rule without from admits everyone on its ports", network_policy([{"ports": [{"port": 8080}]}]),
     WORLD, "allow"),
    ("a port it does not list drops", network_policy([{"ports": [{"port": 9000}]}]), SCORER, "drop"),
    ("no L7: every path of an admitted caller passes", network_policy([{"from": [{"podSelector": {}}]}]),
     SCORER, "allow"),
]


@pytest.mark.parametrize("what,obj,source,expected", NP_CASES, ids=[c[0] for c in NP_CASES])
def test_network_policy(what: str, obj: dict, source: Identity, expected: str) -> None:
    assert outcome(verdict([obj], source, ("DELETE", "/v2/repository/models/iris/unload"))) == expected


def test_a_denial_says_why_and_which_policies_select_the_pod() -> None:
    dropped = verdict([cnp(FROM_SCORER, name="iris-callers")], STRANGER)
    assert dropped.policies == ("CiliumNetworkPolicy lab/iris-callers",)
    assert "default deny" in dropped.reason and "lab/app=notebook" in dropped.reason and "8080" in dropped.reason
    denied = verdict([cnp([{**FROM_SCORER[0], "toPorts": l7({"method": "POST", "path": "/v2/models/iris/infer"})}])],
                     SCORER, ("GET", "/metrics"))
    assert "GET /metrics matches none of the http rules" in denied.reason


@pytest.mark.parametrize("spec_extra,field", [
    ({"egress": [{"toEndpoints": [{}]}]}, "spec.egress"),
    ({"ingressDeny": [{"fromEndpoints": [{}]}]}, "spec.ingressDeny"),
    ({"ingress": [{"fromCIDR": ["10.0.0.0/8"]}]}, "spec.ingress[0].fromCIDR"),
    ({"ingress": [{"toPorts": l7({"path": "/v2/(unclosed"})}]}, "spec.ingress[0].toPorts[0].rules.http[0].path"),
    ({"ingress": [{"fromEntities": ["kube-apiserver"]}]}, "spec.ingress[0].fromEntities[0]"),
    ({"ingress": [{"fromEndpoints": [{"matchExpressions": [{"key": "a", "operator": "Equals"}]}]}]},
     "spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator"),
])
def test_what_cannot_be_enforced_is_refused_naming_the_field(spec_extra: dict, field: str) -> None:
    obj = cnp(None)
    obj["spec"].update(spec_extra)
    with pytest.raises(PolicyError, match=field.replace("[", r"\[").replace("]", r"\]")):
        compile_policy(obj)


def test_specs_list_compiles_each_rule() -> None:
    obj = cnp(FROM_SCORER)
    obj["specs"] = [{"endpointSelector": {}, "ingress": []}]
    assert [p.selector for p in compile_policy(obj)] == [Selector((("component", "predictor"),)), Selector()]
