"""Each exit-test fault on the local target with real processes: KServe's status reason, the kubelet's record of
the failed container, `lab.diagnose` naming the cause, and the service Ready again once the fault is cleared."""
from __future__ import annotations

import pytest

import lab_helpers
from lab_helpers.diagnosis import CAUSES, ISVC_LABEL
from lab_helpers.faults import wait_for_symptom
from lab_helpers.paths import manifests_dir

pytestmark = pytest.mark.integration
SERVICE = "wine-incident"
# The status reason KServe shows for each fault (modelStatus.lastFailureInfo) and the diagnosis' reason.
REASONS = {"model-artifact-missing": ("ModelLoadFailed", "ModelLoadFailed"),
           "framework-runtime-mismatch": ("NoSupportingRuntime", "NoSupportingRuntime"),
           "resource-limits-too-low": ("ModelLoadFailed", "OOMKilled"),
           "storage-backend-not-accessible": ("ModelLoadFailed", "ModelLoadFailed")}
# Where each fault shows on the pod: (container, init?, exit code, the words of its last termination).
EXITS = {"model-artifact-missing": ("storage-initializer", True, 1, "does not exist"),
         "resource-limits-too-low": ("kserve-container", False, 137, "OOMKilled"),
         "storage-backend-not-accessible": ("storage-initializer", True, 1, "Failed to connect to HTTP endpoint")}


@pytest.fixture(scope="module")
def lab(local_home, sklearn_dir):
    lab = lab_helpers.connect("local")
    lab.require("kserve")
    lab.apply(manifests_dir() / "exit-test" / "wine-incident.yaml", {"WINE_SKLEARN_STORAGE_URI": sklearn_dir.as_uri()})
    lab.wait_ready("InferenceService", SERVICE, timeout=90)
    return lab


@pytest.mark.parametrize("cause", CAUSES)
def test_a_fault_shows_kserve_reason_is_diagnosed_and_clears(lab, cause):
    injection = lab.inject_fault(SERVICE, cause)
    found = wait_for_symptom(lab, SERVICE, timeout=60)
    status_reason, diagnosed_reason = REASONS[cause]
    isvc = lab.get("InferenceService", SERVICE)
    assert not found.ready
    assert isvc["status"]["modelStatus"]["lastFailureInfo"]["reason"] == status_reason
    assert (found.cause, found.reason) == (cause, diagnosed_reason)
    if cause in EXITS:
        container, init, code, words = EXITS[cause]
        (pod,) = lab.list("Pod", labels={ISVC_LABEL: SERVICE})
        statuses = pod["status"]["initContainerStatuses" if init else "containerStatuses"]
        state = next(s for s in statuses if s["name"] == container)
        last = state["lastState"]["terminated"]
        assert last["exitCode"] == code and words in last["message"] + last.get("reason", "")
        warnings = [e for e in lab.events("InferenceService", SERVICE) if e["type"] == "Warning"]
        assert any(e["reason"] == "BackOff" and f"Back-off restarting failed container {container}" in e["message"]
                   for e in warnings)
    else:
        assert lab.list("Pod", labels={ISVC_LABEL: SERVICE}) == []  # KServe refused the spec: no Deployment
    lab.clear_fault(injection)
    lab.wait_ready("InferenceService", SERVICE, timeout=90)
    assert lab.diagnose(SERVICE).cause is None


def test_a_failed_storage_initializer_waits_in_crash_loop_back_off_with_its_last_exit(lab):
    injection = lab.inject_fault(SERVICE, "model-artifact-missing")
    wait_for_symptom(lab, SERVICE, timeout=60)
    (pod,) = lab.list("Pod", labels={ISVC_LABEL: SERVICE})
    init = pod["status"]["initContainerStatuses"][0]
    assert pod["status"]["phase"] == "Pending"
    assert init["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff" or "running" in init["state"]
    assert init["lastState"]["terminated"]["reason"] == "Error"
    lab.clear_fault(injection)
    lab.wait_ready("InferenceService", SERVICE, timeout=90)
