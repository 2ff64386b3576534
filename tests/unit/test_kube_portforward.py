"""Port-forward: service -> ready pod/port resolution (kmock) and the loopback relay (local sockets).

The Kubernetes port-forward stream itself (a websocket to the kubelet through the API server)
cannot be exercised without a cluster: kmock does not speak that protocol. What is covered here
is everything around it, and that a failing stream is reported rather than hanging.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from kube_fixtures import MockCluster, cluster  # noqa: F401  (cluster is a pytest fixture)

from lab_helpers.errors import LabError, NotFound
from lab_helpers.kube.transport import KubeApi, load_api_client
from lab_helpers.kube.portforward import LoopbackRelay, port_forward, resolve_target


def _pod(name: str, ready: bool, phase: str = "Running", ports: list[dict] | None = None) -> dict:
    return {"metadata": {"name": name, "namespace": "lab", "labels": {"app": "mlflow"}},
            "spec": {"containers": [{"name": "server", "ports": ports or []}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


@pytest.fixture
def mlflow(cluster: MockCluster) -> KubeApi:
    cluster.put("Service", {"metadata": {"name": "mlflow", "namespace": "lab"}, "spec": {
        "selector": {"app": "mlflow"}, "ports": [{"port": 80, "targetPort": "http"}, {"port": 9000}]}})
    cluster.put("Pod", _pod("mlflow-a", ready=False, ports=[{"name": "http", "containerPort": 5000}]))
    cluster.put("Pod", _pod("mlflow-b", ready=True, ports=[{"name": "http", "containerPort": 5000}]))
    cluster.put("Pod", _pod("other", ready=True) | {"metadata": {"name": "other", "namespace": "lab"}})
    return KubeApi(*load_api_client(kubeconfig=str(cluster.kubeconfig)))


def test_a_service_port_resolves_to_a_ready_pod_and_its_named_port(mlflow: KubeApi) -> None:
    assert resolve_target(mlflow, "lab", "svc/mlflow", 80) == ("mlflow-b", 5000)
    assert resolve_target(mlflow, "lab", "service/mlflow", 9000) == ("mlflow-b", 9000)
    assert resolve_target(mlflow, "lab", "mlflow-b", 5000) == ("mlflow-b", 5000)


def test_resolution_errors_say_what_is_wrong(mlflow: KubeApi, cluster: MockCluster) -> None:
    with pytest.raises(LabError, match=r"service lab/mlflow has no port 8080 \(its ports: 80, 9000\)"):
        resolve_target(mlflow, "lab", "svc/mlflow", 8080)
    with pytest.raises(LabError, match=r"pod lab/mlflow-a is not running and ready"):
        resolve_target(mlflow, "lab", "pod/mlflow-a", 5000)
    with pytest.raises(LabError, match=r"name a pod \(pod/NAME or NAME\) or a service \(svc/NAME\)"):
        resolve_target(mlflow, "lab", "deploy/mlflow", 80)
    with pytest.raises(NotFound, match=r"Service lab/prometheus not found"):
        resolve_target(mlflow, "lab", "svc/prometheus", 9090)
    cluster.put("Pod", _pod("mlflow-b", ready=True, phase="Pending"))
    with pytest.raises(LabError, match=r"no ready pod behind it \(selector app=mlflow\)"):
        resolve_target(mlflow, "lab", "svc/mlflow", 80)


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A loopback TCP server that answers every connection with what it receives, upper-cased."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data.upper())

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def _roundtrip(port: int, data: bytes) -> bytes:
    """The answer to `data`; b"" when the relay closed the connection instead (EOF or reset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        try:
            return conn.recv(4096)
        except ConnectionResetError:
            return b""


def test_relay_pipes_each_connection_to_its_own_upstream(echo_server: int) -> None:
    opened: list[socket.socket] = []

    def open_upstream() -> socket.socket:
        opened.append(socket.create_connection(("127.0.0.1", echo_server)))
        return opened[-1]

    with LoopbackRelay(open_upstream) as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as first, \
                socket.create_connection(("127.0.0.1", relay.port), timeout=5) as second:
            first.sendall(b"ping")
            second.sendall(b"pong")
            assert (first.recv(16), second.recv(16)) == (b"PING", b"PONG")
        assert _roundtrip(relay.port, b"again") == b"AGAIN"
        port = relay.port
    assert len(opened) == 3
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_relay_reports_an_upstream_failure_and_keeps_serving(echo_server: int,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    attempts: list[int] = []

    def flaky() -> socket.socket:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("pod mlflow-b is gone")
        return socket.create_connection(("127.0.0.1", echo_server))

    with LoopbackRelay(flaky) as relay:
        assert _roundtrip(relay.port, b"lost") == b""
        assert _roundtrip(relay.port, b"fine") == b"FINE"
    assert relay.errors == ["upstream connection failed: pod mlflow-b is gone"]
    assert "pod mlflow-b is gone" in capsys.readouterr().err


def test_port_forward_resolves_then_reports_that_the_stream_could_not_open(mlflow: KubeApi) -> None:
    with port_forward("lab", "svc/mlflow", 80, api_client=mlflow.api_client) as forwarded:
        assert (forwarded.pod, forwarded.pod_port) == ("mlflow-b", 5000)
        assert forwarded.url == f"http://127.0.0.1:{forwarded.port}"
        assert _roundtrip(forwarded.port, b"GET / HTTP/1.0\r\n\r\n") == b""
    assert len(forwarded.errors) == 1
    assert "port-forward to pod lab/mlflow-b:5000 failed" in forwarded.errors[0]
