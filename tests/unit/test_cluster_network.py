"""How a local pod reaches a Service by its cluster name: the gateway as its HTTP proxy, loopback direct."""
from __future__ import annotations

from lab_helpers.local.kubelet import cluster_network


def test_pods_get_the_gateway_as_http_proxy_and_keep_loopback_direct():
    env = cluster_network("http://127.0.0.1:41000")
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://127.0.0.1:41000"
    assert "127.0.0.1" in env["NO_PROXY"].split(",") and env["no_proxy"] == env["NO_PROXY"]
    assert cluster_network(None) == {}   # before the gateway listens, pods get no proxy rather than a wrong one
