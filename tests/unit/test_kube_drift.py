"""The kubernetes target applies manifests/drift as they are, and runs the drift job as a Job of its CronJob (kmock)."""
from __future__ import annotations

from kube_fixtures import MockCluster, cluster  # noqa: F401  (cluster is a pytest fixture)

VARIABLES = {"NAMESPACE": "lab", "DRIFT_IMAGE": "ghcr.io/you/serving-lab-drift:0.1",
             "IRIS_SKLEARN_STORAGE_URI": "s3://mlflow/1/abc/artifacts/sklearn", "DRIFT_SCHEDULE": "*/15 * * * *",
             "DRIFT_WINDOW": "15m", "DRIFT_REFERENCE_WINDOW": "2026-12-02T10:00:00Z/2026-12-02T11:00:00Z"}


def test_the_drift_manifests_apply_and_the_job_runs_from_its_cronjob(cluster: MockCluster) -> None:
    lab = cluster.lab()
    lab.apply("manifests/drift", VARIABLES)
    monitor = cluster.stored("ServiceMonitor", "monitoring", "pushgateway")
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    cronjob = cluster.stored("CronJob", "lab", "prediction-drift")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    # kmock assigns no uid on apply; a real API server does, and the Job's ownerReference names it.
    cluster.put("CronJob", {**cronjob, "metadata": {**cronjob["metadata"], "uid": "cron-uid"}})
    job = lab.run_cronjob_now("prediction-drift", job_name="prediction-drift-now")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/you/serving-lab-drift:0.1"
    assert container["command"] == ["python", "-m", "lab_helpers.drift", "check"]
    assert "--pushgateway=http://pushgateway.monitoring.svc.cluster.local:9091" in container["args"]
    assert "--receiver=http://drift-receiver.lab.svc.cluster.local" in container["args"]
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
