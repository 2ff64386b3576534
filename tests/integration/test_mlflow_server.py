"""A real `mlflow server` in a temporary lab home: start, reuse, register, load elsewhere, stop."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import psutil
import pytest

from lab_helpers.errors import LabError
from lab_helpers.models.mlflow_server import ensure_mlflow_server, stop_mlflow_server
from lab_helpers.models.registry import register_lab_models, storage_uri
from lab_helpers.models.training import LAB_MODELS, train

pytestmark = pytest.mark.integration


def _record(home: Path) -> dict:
    return json.loads((home / "mlflow" / "server.json").read_text())


def _server_processes(pid: int) -> list[psutil.Process]:
    leader = psutil.Process(pid)
    return [leader, *leader.children(recursive=True)]


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory):
    """LAB_HOME points at a temporary directory, as `paths.lab_home()` reads it."""
    home = tmp_path_factory.mktemp("lab_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(home))
        try:
            yield home
        finally:
            stop_mlflow_server(home)


@pytest.fixture(scope="module")
def server(lab_home) -> dict:
    uri = ensure_mlflow_server()
    return {"uri": uri, "pid": _record(lab_home)["pid"]}


def test_server_is_loopback_only_and_keeps_its_state_in_the_lab_home(server, lab_home):
    assert server["uri"].startswith("http://127.0.0.1:")
    assert httpx.get(server["uri"] + "/health").text == "OK"
    assert (lab_home / "mlflow" / "mlflow.db").is_file()
    assert stat.S_IMODE((lab_home / "mlflow" / "mlflow.db").stat().st_mode) == 0o600  # like the API token
    assert "Uvicorn running on http://127.0.0.1:" in (lab_home / "mlflow" / "server.log").read_text()
    # Host-header check on: a request naming another host is refused.
    refused = httpx.get(
        server["uri"] + "/api/2.0/mlflow/experiments/search", headers={"Host": "evil.example"}
    )
    assert refused.status_code == 403 and "DNS rebinding" in refused.text


def test_second_ensure_reuses_the_running_server(server, lab_home):
    assert ensure_mlflow_server() == server["uri"]
    assert _record(lab_home)["pid"] == server["pid"]


def test_registered_iris_model_loads_in_a_fresh_process_from_its_storage_uri(server):
    versions = register_lab_models(server["uri"])
    assert [(v.name, v.version, v.created) for v in versions][:3] == [
        ("iris", 1, True),
        ("iris", 2, True),
        ("iris", 3, True),
    ]
    uri = storage_uri(server["uri"], "iris", alias="champion")
    assert uri.startswith("file:///") and "/mlflow/artifacts/" in uri

    champion = train(LAB_MODELS[0])
    rows = champion.dataset.X_test.head(5)
    script = textwrap.dedent(
        """
        import json, sys
        import mlflow.pyfunc, pandas as pd
        model = mlflow.pyfunc.load_model(sys.argv[1])
        frame = pd.DataFrame(json.loads(sys.argv[2]))
        print(json.dumps([int(p) for p in model.predict(frame)]))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    loaded = subprocess.run(
        [sys.executable, "-c", script, uri, rows.to_json(orient="records")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == champion.estimator.predict(rows).tolist()


def test_stale_record_is_replaced_without_touching_the_process_it_names(server, lab_home):
    """Last: it stops the module's server. A record whose pid now names another process group
    (pid reuse) must not get that group signalled."""
    processes = _server_processes(server["pid"])
    assert stop_mlflow_server() is True
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)
    assert stop_mlflow_server() is False

    bystander = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        old_port = int(server["uri"].rsplit(":", 1)[1])
        stale = {"pid": bystander.pid, "port": old_port, "backend_store_uri": "sqlite:///elsewhere.db"}
        (lab_home / "mlflow" / "server.json").write_text(json.dumps(stale))
        uri = ensure_mlflow_server()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    assert _record(lab_home)["pid"] != bystander.pid
    assert httpx.get(uri + "/health").status_code == 200
    # Registered models survive a restart: the sqlite store is in the lab home.
    assert [v.created for v in register_lab_models(uri)] == [False] * len(LAB_MODELS)


def test_a_server_that_cannot_start_raises_with_the_log_tail(tmp_path):
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "mlflow.db").write_text("this is not a sqlite database")
    with pytest.raises(LabError) as raised:
        ensure_mlflow_server(home=tmp_path, timeout=60)
    message = str(raised.value)
    assert "MLflow server on port" in message and "last lines of" in message
    assert "not a database" in message
    assert not (tmp_path / "mlflow" / "server.json").exists()


def test_a_start_that_times_out_stops_what_it_started(tmp_path):
    with pytest.raises(LabError, match="was not healthy after 0.5 s; last lines of"):
        ensure_mlflow_server(home=tmp_path, timeout=0.5)
    backend = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if backend in (p.info["cmdline"] or [])]
    assert leftovers == []
    assert not (tmp_path / "mlflow" / "server.json").exists()
