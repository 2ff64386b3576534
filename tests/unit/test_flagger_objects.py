"""The objects Flagger makes for a Canary over a KServe predictor Deployment: primary copy, Services, HTTPRoute."""
from __future__ import annotations

from typing import Any

import pytest

from lab_helpers.local.controllers.flagger_objects import (CanaryConfigError, http_route, primary_deployment,
                                                           primary_template, route_weights, selector_label,
                                                           service_name, services)

POD_LABELS = {"app": "isvc.iris-rollout-predictor", "serving.kserve.io/inferenceservice": "iris-rollout",
              "component": "predictor"}


def target(replicas: int | None = 1, match: dict[str, str] | None = None) -> dict[str, Any]:
    """A predictor Deployment as KServe (Standard mode) writes it."""
    spec: dict[str, Any] = {"selector": {"matchLabels": match if match is not None else {"app": POD_LABELS["app"]}},
                            "template": {"metadata": {"labels": dict(POD_LABELS),
                                                      "annotations": {"serving.kserve.io/storage-uri": "s3://m/v2"}},
                                         "spec": {"containers": [{"name": "kserve-container", "image": "lab"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "iris-rollout-predictor", "namespace": "lab",
                         "labels": {"serving.kserve.io/inferenceservice": "iris-rollout"}},
            "spec": spec}


def canary(**service: Any) -> dict[str, Any]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "iris-rollout", "namespace": "lab", "uid": "canary-uid"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris-rollout-predictor"},
                     "service": {"name": "iris-rollout", "port": 80, "targetPort": 8080,
                                 "gatewayRefs": [{"name": "lab-gateway", "namespace": "lab"}],
                                 "hosts": ["iris-rollout-lab.example.com"], **service}}}


def test_the_primary_is_the_target_under_a_primary_selector_keeping_every_other_pod_label() -> None:
    primary = primary_deployment(canary(), target(replicas=2))
    assert primary["metadata"]["name"] == "iris-rollout-predictor-primary"
    assert primary["metadata"]["namespace"] == "lab"
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "isvc.iris-rollout-predictor-primary"}}
    labels = primary["spec"]["template"]["metadata"]["labels"]
    assert labels == {**POD_LABELS, "app": "isvc.iris-rollout-predictor-primary"}
    assert labels["serving.kserve.io/inferenceservice"] == "iris-rollout"  # KServe's webhook still knows the pods
    assert primary["spec"]["template"]["metadata"]["annotations"] == {"serving.kserve.io/storage-uri": "s3://m/v2"}
    assert primary["spec"]["template"]["spec"] == target()["spec"]["template"]["spec"]
    assert primary["spec"]["replicas"] == 2
    assert primary["metadata"]["ownerReferences"] == [
        {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "iris-rollout", "uid": "canary-uid",
         "controller": True, "blockOwnerDeletion": True}]


@pytest.mark.parametrize("replicas", [None, 0])
def test_a_target_without_replicas_or_at_zero_gives_a_primary_of_one(replicas) -> None:
    assert primary_deployment(canary(), target(replicas=replicas))["spec"]["replicas"] == 1


def test_the_primary_template_does_not_touch_the_target() -> None:
    source = target()
    template = primary_template(source)
    template["spec"]["containers"][0]["image"] = "changed"
    assert source["spec"]["template"]["spec"]["containers"][0]["image"] == "lab"
    assert source["spec"]["template"]["metadata"]["labels"]["app"] == "isvc.iris-rollout-predictor"


@pytest.mark.parametrize("match, expected", [
    ({"app": "a", "name": "n"}, ("app", "a")),
    ({"name": "n", "app.kubernetes.io/name": "k"}, ("name", "n")),
    ({"app.kubernetes.io/name": "k", "other": "o"}, ("app.kubernetes.io/name", "k")),
])
def test_the_selector_label_is_the_first_of_flaggers_defaults(match, expected) -> None:
    assert selector_label(target(match=match)) == expected


def test_a_target_without_a_selector_label_flagger_knows_is_a_config_error() -> None:
    with pytest.raises(CanaryConfigError, match=r"deployment iris-rollout-predictor\.lab spec\.selector\.matchLabels "
                                                r"must contain one of \['app', 'name', 'app\.kubernetes\.io/name'\]"):
        primary_deployment(canary(), target(match={"serving.kserve.io/inferenceservice": "iris-rollout"}))


def test_three_services_named_from_service_name_apex_and_primary_select_the_primary_pods() -> None:
    apex, primary, canary_svc = services(canary(), target())
    assert [s["metadata"]["name"] for s in (apex, primary, canary_svc)] == \
        ["iris-rollout", "iris-rollout-primary", "iris-rollout-canary"]
    assert apex["spec"]["selector"] == primary["spec"]["selector"] == {"app": "isvc.iris-rollout-predictor-primary"}
    assert canary_svc["spec"]["selector"] == {"app": "isvc.iris-rollout-predictor"}
    for service in (apex, primary, canary_svc):
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
        assert service["metadata"]["labels"] == {"app": service["metadata"]["name"]}
        assert service["metadata"]["ownerReferences"][0]["uid"] == "canary-uid"
    assert "iris-rollout-predictor" not in {s["metadata"]["name"] for s in (apex, primary, canary_svc)}


def test_the_target_port_defaults_to_the_port_and_the_port_name_is_kept() -> None:
    [apex, *_] = services(canary(port=9000, targetPort=None, portName="grpc"), target())
    assert apex["spec"]["ports"] == [{"name": "grpc", "port": 9000, "protocol": "TCP", "targetPort": 9000}]


def test_without_service_name_the_services_are_named_after_the_target() -> None:
    spec = canary()
    del spec["spec"]["service"]["name"]
    assert service_name(spec) == "iris-rollout-predictor"
    assert [s["metadata"]["name"] for s in services(spec, target())][1:] == \
        ["iris-rollout-predictor-primary", "iris-rollout-predictor-canary"]


def test_the_http_route_splits_the_hosts_between_primary_and_canary_on_the_gateways() -> None:
    route = http_route(canary(), 75, 25)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1" and route["kind"] == "HTTPRoute"
    assert route["metadata"]["name"] == "iris-rollout"
    assert route["spec"]["parentRefs"] == [{"name": "lab-gateway", "namespace": "lab"}]
    assert route["spec"]["hostnames"] == ["iris-rollout-lab.example.com"]
    assert route["spec"]["rules"] == [{"backendRefs": [
        {"group": "", "kind": "Service", "name": "iris-rollout-primary", "port": 80, "weight": 75},
        {"group": "", "kind": "Service", "name": "iris-rollout-canary", "port": 80, "weight": 25}]}]


def test_route_weights_read_back_what_the_route_sends() -> None:
    spec = canary()
    assert route_weights(None, spec) == (100, 0)
    assert route_weights(http_route(spec, 40, 60), spec) == (40, 60)
    assert route_weights(http_route(spec, 100, 0), spec) == (100, 0)


def test_the_primary_deployment_object_carries_only_the_selector_label_by_default():
    from lab_helpers.local.controllers.flagger_objects import primary_deployment

    canary = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
              "metadata": {"name": "iris-rollout", "namespace": "lab", "uid": "u"},
              "spec": {"targetRef": {"name": "iris-rollout-predictor"}}}
    target = {"metadata": {"name": "iris-rollout-predictor", "namespace": "lab",
                           "labels": {"app": "isvc.iris-rollout-predictor", "component": "predictor"}},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "isvc.iris-rollout-predictor"}},
                       "template": {"metadata": {"labels": {"app": "isvc.iris-rollout-predictor",
                                                            "component": "predictor"}}, "spec": {}}}}
    primary = primary_deployment(canary, target)
    assert primary["metadata"]["labels"] == {"app": "isvc.iris-rollout-predictor-primary"}
    assert primary["spec"]["template"]["metadata"]["labels"]["component"] == "predictor"
