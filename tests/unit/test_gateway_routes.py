"""Route resolution: weights, readiness, and the errors the proxy turns into 404/503."""
from __future__ import annotations

from collections import Counter

import pytest

from lab_helpers.gateway.routes import (
    Backend,
    NoReadyBackend,
    Route,
    RouteTable,
    RouteTarget,
    UnknownHost,
    normalize_host,
)

HOST = "iris-lab.example.com"


def target(revision: str, weight: int, *backends: Backend) -> RouteTarget:
    return RouteTarget(service="iris", namespace="lab", revision=revision, backends=list(backends), weight=weight)


def canary_table(seed: int, primary_weight: int = 90, canary_weight: int = 10) -> RouteTable:
    return RouteTable(
        [Route(HOST, [
            target("primary", primary_weight, Backend("http://127.0.0.1:9001")),
            target("canary", canary_weight, Backend("http://127.0.0.1:9002")),
        ])],
        seed=seed,
    )


def test_weights_split_traffic_in_proportion():
    table = canary_table(seed=7)
    counts = Counter(table.resolve(HOST)[0].revision for _ in range(10_000))
    assert counts["canary"] == pytest.approx(1_000, abs=150)
    assert counts["primary"] == pytest.approx(9_000, abs=150)


def test_same_seed_gives_the_same_sequence_and_another_seed_differs():
    def sequence(seed: int) -> list[str]:
        table = canary_table(seed, 50, 50)
        return [table.resolve(HOST)[0].revision for _ in range(200)]

    assert sequence(1) == sequence(1)
    assert sequence(1) != sequence(2)


def test_weight_zero_target_is_never_chosen():
    table = canary_table(seed=3, primary_weight=100, canary_weight=0)
    assert {table.resolve(HOST)[0].revision for _ in range(2_000)} == {"primary"}


def test_round_robin_over_ready_backends_only():
    backends = [
        Backend("http://127.0.0.1:9001"),
        Backend("http://127.0.0.1:9002", ready=False),
        Backend("http://127.0.0.1:9003"),
    ]
    table = RouteTable([Route(HOST, [target("r1", 100, *backends)])])
    picked = [table.resolve(HOST)[1].url for _ in range(6)]
    assert picked == ["http://127.0.0.1:9001", "http://127.0.0.1:9003"] * 3


def test_no_ready_backend_names_the_revision():
    table = RouteTable([Route(HOST, [target("r1", 100, Backend("http://127.0.0.1:9001", ready=False))])])
    with pytest.raises(NoReadyBackend, match="lab/iris revision r1") as caught:
        table.resolve(HOST)
    assert caught.value.target.revision == "r1"


def test_unknown_host():
    with pytest.raises(UnknownHost, match="no route for host other.example.com"):
        RouteTable().pick_target("other.example.com")


def test_replace_swaps_the_whole_table():
    table = canary_table(seed=1)
    table.replace([Route("new.example.com", [target("r2", 1, Backend("http://127.0.0.1:9005"))])])
    assert [route.host for route in table.routes()] == ["new.example.com"]
    with pytest.raises(UnknownHost):
        table.pick_target(HOST)


def test_backend_is_picked_from_the_current_table_after_a_hold():
    """A request held while its revision scales from zero must see the backend that came up."""
    table = RouteTable([Route(HOST, [target("r1", 100)])])
    picked = table.pick_target(HOST)
    with pytest.raises(NoReadyBackend):
        table.pick_backend(HOST, picked)
    table.replace([Route(HOST, [target("r1", 100, Backend("http://127.0.0.1:9007"))])])
    assert table.pick_backend(HOST, picked).url == "http://127.0.0.1:9007"


@pytest.mark.parametrize(
    "header, expected",
    [("Iris-Lab.Example.com:8080", HOST), (HOST, HOST), ("127.0.0.1:80", "127.0.0.1"), ("[::1]:8080", "[::1]")],
)
def test_normalize_host_strips_port_and_case(header, expected):
    assert normalize_host(header) == expected


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Backend("127.0.0.1:9001"), "Backend.url: expected http://HOST:PORT"),
        (lambda: Backend("http://127.0.0.1:9001/v2"), "no path or query"),
        (lambda: target("r1", -1), "weight must be an integer >= 0"),
        (lambda: RouteTarget("iris", "", "r1"), "must all be non-empty"),
        (lambda: Route("Iris.example.com:80", [target("r1", 1)]), "without port"),
        (lambda: Route(HOST, []), "at least one target"),
        (lambda: Route(HOST, [target("r1", 0)]), "weights sum to 0"),
        (lambda: Route(HOST, [target("r1", 1), target("r1", 2)]), "revision listed twice: lab/iris/r1"),
        (lambda: RouteTable([Route(HOST, [target("r1", 1)]), Route(HOST, [target("r2", 1)])]), "appears in two routes"),
    ],
)
def test_bad_route_data_is_rejected_with_the_place(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_failed_replace_keeps_the_previous_table():
    table = canary_table(seed=1)
    with pytest.raises(ValueError):
        table.replace([Route("a.example.com", [target("r1", 1)]), "not a route"])
    assert [route.host for route in table.routes()] == [HOST]
