"""The general kubelet with real processes: restart policies, phases by exit code, probes from the spec."""
from __future__ import annotations

import asyncio
import time

import pytest

from lab_helpers.local.kubelet import Kubelet
from lab_helpers.local.store import Store

pytestmark = pytest.mark.integration

# Serves the pod's directory on the host port behind container port 8080 (a readiness flag is a file in it).
SERVE = ("import http.server, functools; from lab_helpers.runtime.pod import listen_port; "
         "http.server.ThreadingHTTPServer(('127.0.0.1', listen_port(8080)), "
         "functools.partial(http.server.SimpleHTTPRequestHandler, directory='.')).serve_forever()")


def pod(name: str, command: list[str], restart: str = "Always", **container) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "lab"},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "python:3.11", "command": command, **container}]}}


def run(tmp_path, manifest: dict, until, timeout: float = 20.0, after=None) -> dict:
    """Run the kubelet over one Pod until `until(pod)` holds; `after(pod, store)` may act meanwhile."""
    store = Store(tmp_path / "store.sqlite")
    store.apply(manifest)
    name = manifest["metadata"]["name"]

    async def scenario():
        kubelet = Kubelet(store, tmp_path)
        await kubelet.sync()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                current = store.get("Pod", "lab", name)
                if after is not None:
                    after(current, store)
                if until(current):
                    return current
                await asyncio.sleep(0.1)
            raise AssertionError(f"pod never reached the state; last status: {current.get('status')}")
        finally:
            await kubelet.shutdown()

    return asyncio.run(scenario()), store


def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase", "")


def main_status(pod: dict) -> dict:
    return pod["status"]["containerStatuses"][0]


def started(store: Store, name: str) -> int:
    return sum(e["count"] for e in store.events([("Pod", "lab", name)]) if e["reason"] == "Started")


def test_a_job_style_pod_succeeds_by_exit_code(tmp_path):
    done, store = run(tmp_path, pod("ok", ["python", "-c", "print('done')"], restart="Never"),
                      lambda p: phase(p) == "Succeeded")
    terminated = main_status(done)["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (0, "Completed", "done")
    assert {c["type"]: c["status"] for c in done["status"]["conditions"]}["Ready"] == "False"


def test_a_failed_pod_under_never_is_not_restarted(tmp_path):
    failed, store = run(tmp_path, pod("bad", ["python", "-c", "import sys; sys.exit(3)"], restart="Never"),
                        lambda p: phase(p) == "Failed")
    time.sleep(1.5)  # longer than the first back-off: a restart would have happened by now
    assert main_status(failed)["state"]["terminated"]["exitCode"] == 3
    assert main_status(failed)["restartCount"] == 0 and started(store, "bad") == 1


def test_on_failure_restarts_until_it_succeeds(tmp_path):
    script = ("import pathlib, sys; p = pathlib.Path('tries'); n = int(p.read_text()) if p.exists() else 0; "
              "p.write_text(str(n + 1)); sys.exit(0 if n else 1)")
    done, store = run(tmp_path, pod("flaky", ["python", "-c", script], restart="OnFailure"),
                      lambda p: phase(p) == "Succeeded")
    assert main_status(done)["restartCount"] == 1
    assert main_status(done)["lastState"]["terminated"]["exitCode"] == 1


def test_a_failing_liveness_probe_restarts_the_container(tmp_path):
    manifest = pod("deaf", ["python", "-c", "import time; time.sleep(60)"], ports=[{"containerPort": 8080}],
                   livenessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 1})
    restarted, store = run(tmp_path, manifest, lambda p: main_status(p).get("restartCount", 0) >= 1
                           if p.get("status", {}).get("containerStatuses") else False)
    assert main_status(restarted)["lastState"]["terminated"]["message"].startswith("Liveness probe failed")
    reasons = {e["reason"] for e in store.events([("Pod", "lab", "deaf")])}
    assert {"Unhealthy", "Killing"} <= reasons


def test_a_failing_readiness_probe_only_takes_the_pod_out_of_the_endpoints(tmp_path):
    flag = tmp_path / "pods" / "lab" / "shy" / "ready"
    seen = {"ready": False}

    def toggle(current, store):
        status = current.get("status") or {}
        if not flag.parent.exists():
            return
        if not seen["ready"]:
            flag.write_text("ok")
            if status.get("containerStatuses") and main_status(current)["ready"]:
                seen["ready"] = True
                flag.unlink()  # from now on the probe fails

    manifest = pod("shy", ["python", "-c", SERVE], ports=[{"containerPort": 8080, "name": "http"}],
                   readinessProbe={"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1,
                                   "failureThreshold": 1})
    unready, store = run(tmp_path, manifest,
                         lambda p: seen["ready"] and not main_status(p)["ready"], after=toggle)
    assert main_status(unready)["restartCount"] == 0 and "running" in main_status(unready)["state"]
    assert phase(unready) == "Running"
    assert {c["type"]: c["status"] for c in unready["status"]["conditions"]}["Ready"] == "False"
    unhealthy = [e for e in store.events([("Pod", "lab", "shy")]) if e["reason"] == "Unhealthy"]
    assert unhealthy and "Readiness probe failed: HTTP probe failed with statuscode: 404" in unhealthy[-1]["message"]


def test_an_unknown_image_waits_in_image_pull_backoff(tmp_path):
    manifest = pod("nope", ["true"])
    manifest["spec"]["containers"][0]["image"] = "example.org/team/unknown:1"
    waiting, _ = run(tmp_path, manifest, lambda p: bool(p.get("status", {}).get("containerStatuses")), timeout=5)
    state = main_status(waiting)["state"]["waiting"]
    assert state["reason"] == "ErrImagePull" and "team/unknown" in state["message"]
    assert phase(waiting) == "Pending"
