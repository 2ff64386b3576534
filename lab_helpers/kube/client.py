"""The `kubernetes` target: the helper API against a real cluster from a kubeconfig context.

Server-side dry run then server-side apply, watches with deadlines, events of an object and its
children, inference through the ingress. HTTP and errors live in `transport.py`.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any, Iterator, TextIO
from urllib.parse import urlsplit

import httpx
from kubernetes import client as k8s_client

from ..api import Lab, Source
from ..conditions import condition_met, condition_summary, failed_for_good
from ..diagnosis import Diagnosis, diagnose
from ..errors import Forbidden, LabError, ManifestError, NotReady, TargetUnavailable
from ..manifests.loading import load_documents
from ..policy.callers import CallResult, caller_pod, parse_curl_status, predictor_host
from ..policy.flows import Flow
from ..prom.client import PromClient
from .hubble import hubble_flows
from .portforward import port_forward
from .prometheus import cluster_prom_client
from .resources import KINDS, ResourceType, lookup
from .transport import ApiFailure, KubeApi, Target, load_api_client

FIELD_MANAGER = "serving-lab"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
INTERCEPTOR_ENV = "LAB_INTERCEPTOR_URL"
INGRESS_ENV = "LAB_INGRESS_URL"
INFER_TIMEOUT_S = 120.0
CALLER_START_S = 120.0  # how long a call_as pod may take to be scheduled, pull curl and start
POD_POLL_S = 0.5
WATCH_TICK_S = 5.0  # a watch re-connects at least this often, so progress and deadlines are checked



# --------------------------------------------------------------------------- helpers on objects


def _event_time(event: dict[str, Any]) -> datetime:
    stamp = (event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
             or (event.get("metadata") or {}).get("creationTimestamp"))
    if not stamp:
        return datetime.min.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# Which kinds own pods through ownerReferences, and which of their descendants to look through.
_DESCENDANT_KINDS = {
    "Deployment": ("ReplicaSet", "Pod"), "ReplicaSet": ("Pod",), "StatefulSet": ("Pod",),
    "DaemonSet": ("Pod",), "Job": ("Pod",), "CronJob": ("Job", "Pod"),
}
ISVC_LABEL = "serving.kserve.io/inferenceservice"


# --------------------------------------------------------------------------- the target


class KubernetesLab(Lab):
    """The helper API on a cluster: server-side apply, watches, events, ingress inference."""

    target = "kubernetes"

    def __init__(self, context: str | None = None, namespace: str = "lab", kubeconfig: str | None = None,
                 api_client: k8s_client.ApiClient | None = None, progress: TextIO | None = None,
                 progress_after: float = 5.0):
        """Connects and checks the API answers; raises TargetUnavailable with how to fix it.

        `progress` (default stdout) receives condition changes of waits longer than `progress_after` s.
        """
        if api_client is None:
            api_client, label = load_api_client(context, kubeconfig)
        else:
            label = context or "given ApiClient"
        self.namespace = namespace
        self.api = KubeApi(api_client, label)
        self.server_version = self.api.version()
        self._progress = progress
        self.progress_after = progress_after

    # ---- apply

    @functools.cached_property
    def prom(self) -> PromClient:
        """PromQL against the cluster's Prometheus: $PROMETHEUS_URL, else a port-forward to it."""
        return cluster_prom_client(self.port_forward)

    def tracking_uri(self) -> str:
        """The cluster's MLflow, reached from this machine: ``$MLFLOW_TRACKING_URI``."""
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise TargetUnavailable("set MLFLOW_TRACKING_URI to your cluster's MLflow (e.g. after "
                                    "`kubectl port-forward svc/mlflow 5000` use http://127.0.0.1:5000); "
                                    "see docs/cluster.md")
        return uri

    def apply(self, source: Source, variables: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Dry-run every document server-side (dryRun=All), then server-side apply each in order.

        Nothing is applied if any dry run fails. A document whose namespace is created by an earlier
        Namespace document of the same apply cannot be dry-run before that namespace exists; it is
        checked by its real apply.
        """
        planned = [self._plan(doc.obj, doc.origin) for doc in load_documents(source, self.variables(variables))]
        created_namespaces = {body["metadata"]["name"] for _, rtype, body, _ in planned if rtype.kind == "Namespace"}
        for origin, rtype, body, path in planned:
            try:
                self._server_side_apply(path, body, dry_run=True)
            except ApiFailure as failure:
                if failure.namespace_missing and body["metadata"].get("namespace") in created_namespaces:
                    continue
                raise self.api.error(failure, "patch", self._target(rtype, body), document=origin) from None
        applied: list[dict[str, Any]] = []
        for origin, rtype, body, path in planned:
            try:
                applied.append(self._server_side_apply(path, body, dry_run=False))
            except ApiFailure as failure:
                cause = self.api.error(failure, "patch", self._target(rtype, body))
                done = ", ".join(f"{o.get('kind')} {o['metadata'].get('name')}" for o in applied) or "nothing"
                raise LabError(f"{origin}: passed the dry run but its apply failed: {cause} "
                               f"(already applied: {done})") from None
        return applied

    def _plan(self, obj: dict[str, Any], origin: str) -> tuple[str, ResourceType, dict[str, Any], str]:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if not kind:
            raise ManifestError(origin, "kind", "a kind (e.g. InferenceService)")
        if not api_version:
            raise ManifestError(origin, "apiVersion", f"an apiVersion for {kind}")
        try:
            rtype = lookup(kind).with_api_version(api_version)
        except (LabError, ValueError) as exc:
            raise ManifestError(origin, "kind" if isinstance(exc, LabError) else "apiVersion", str(exc)) from None
        metadata = dict(obj.get("metadata") or {})
        if not metadata.get("name"):
            raise ManifestError(origin, "metadata.name", "a name (server-side apply cannot use generateName)")
        metadata.pop("managedFields", None)  # server bookkeeping, present on objects from get(); SSA refuses it
        if rtype.namespaced:
            metadata.setdefault("namespace", self.namespace)
        else:
            metadata.pop("namespace", None)
        body = dict(obj, metadata=metadata)
        return origin, rtype, body, rtype.path(metadata.get("namespace"), metadata["name"])

    def _server_side_apply(self, path: str, body: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        query = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
        if dry_run:
            query["dryRun"] = "All"
        return self.api.request("PATCH", path, query=query, body=body, content_type=APPLY_CONTENT_TYPE)

    def _target(self, rtype: ResourceType, body: dict[str, Any]) -> Target:
        return Target(rtype, body["metadata"].get("namespace"), body["metadata"]["name"])

    # ---- read / delete

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        rtype, ns = lookup(kind), namespace or self.namespace
        return self.api.call("get", Target(rtype, ns, name), "GET", rtype.path(ns, name))

    def list(self, kind: str, namespace: str | None = None,
             labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        rtype, ns = lookup(kind), namespace or self.namespace
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        found = self.api.call("list", Target(rtype, ns), "GET", rtype.path(ns), query=query)
        return [dict(item, apiVersion=rtype.api_version, kind=rtype.kind) for item in found.get("items") or []]

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        rtype, ns = lookup(kind), namespace or self.namespace
        try:
            self.api.request("DELETE", rtype.path(ns, name))
        except ApiFailure as failure:
            if failure.code == 404 and failure.details.get("name"):
                return
            raise self.api.error(failure, "delete", Target(rtype, ns, name)) from None

    # ---- events

    def events(self, kind: str, name: str, namespace: str | None = None,
               children: bool = True) -> list[dict[str, Any]]:
        """Core events of the object and, if `children`, of what it runs (for an InferenceService:
        its Deployments, ReplicaSets and pods by the ``serving.kserve.io/inferenceservice`` label;
        for workloads: their ReplicaSets/Jobs/pods by ownerReferences), oldest first."""
        rtype = lookup(kind)
        ns = (namespace or self.namespace) if rtype.namespaced else "default"
        involved = {(kind, name)}
        if children and kind == "InferenceService":
            involved.add(("Deployment", f"{name}-predictor"))
            for child_kind in ("Deployment", "ReplicaSet", "Pod"):
                involved |= {(child_kind, o["metadata"]["name"])
                             for o in self.list(child_kind, ns, labels={ISVC_LABEL: name})}
        elif children and kind in _DESCENDANT_KINDS:
            involved |= self._descendants(self.get(kind, name, ns), ns)
        listed = self.api.call("list", Target(KINDS["Event"], ns), "GET", KINDS["Event"].path(ns))
        matching = [e for e in listed.get("items") or []
                    if ((e.get("involvedObject") or {}).get("kind"), (e.get("involvedObject") or {}).get("name"))
                    in involved]
        return sorted(matching, key=_event_time)

    def _descendants(self, root: dict[str, Any], namespace: str) -> set[tuple[str, str]]:
        """(kind, name) of what `root` owns, directly or through a chain of ownerReferences."""
        levels = _DESCENDANT_KINDS[root["kind"]]
        candidates = [obj for kind in levels for obj in self.list(kind, namespace)]
        owners, found = {root["metadata"].get("uid")}, set()
        for _ in levels:  # one pass per level of ownership
            for obj in candidates:
                if {ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or []} & owners:
                    owners.add(obj["metadata"].get("uid"))
                    found.add((obj["kind"], obj["metadata"]["name"]))
        return found

    # ---- wait

    def wait_for(self, kind: str, name: str, condition: str = "Ready", namespace: str | None = None,
                 timeout: float = 120.0) -> dict[str, Any]:
        """Watch the object (field selector on its name) until `condition` is True for its current
        generation; on timeout raise NotReady with a diagnosis (reason, last events, runbook)."""
        target = Target(lookup(kind), namespace or self.namespace, name)
        started = time.monotonic()
        reporter = _Progress(self._progress or sys.stdout, str(target), started, self.progress_after)
        met, current = self._follow(target, condition, started + timeout, reporter)
        if met:
            return current
        if current is None:
            raise NotReady(Diagnosis(kind=kind, name=name, namespace=target.namespace, reason="NotFound",
                                     message=f"the object does not exist after {timeout:g}s (was it applied to "
                                             f"namespace {target.namespace}, on context {self.api.context!r}?)"))
        try:
            diagnosis = diagnose(current, self.events(kind, name, target.namespace))
        except Forbidden as denied:  # the diagnosis matters more than the events RBAC hides
            diagnosis = diagnose(current, [])
            diagnosis.message += f" (events not shown: {denied})"
        raise NotReady(diagnosis)

    def _follow(self, target: Target, condition: str, deadline: float,
                reporter: _Progress) -> tuple[bool, dict[str, Any] | None]:
        """(condition met, latest state or None if absent): list, then watch from that version,
        re-listing when the server says the version is too old (410 Gone)."""
        rtype, ns, name = target.rtype, target.namespace, target.name
        selector = {"fieldSelector": f"metadata.name={name}"}
        current: dict[str, Any] | None = None
        version: str | None = None
        while True:
            if version is None:
                listed = self.api.call("list", target, "GET", rtype.path(ns), query=selector)
                version = (listed.get("metadata") or {}).get("resourceVersion")
                items = [o for o in listed.get("items") or [] if o["metadata"]["name"] == name]
                current = dict(items[0], apiVersion=rtype.api_version, kind=rtype.kind) if items else None
            met = current is not None and condition_met(current, condition)
            remaining = deadline - time.monotonic()
            if met or remaining <= 0 or (current is not None and failed_for_good(rtype.kind, current, condition)):
                return met, current
            reporter.show(current)
            query = dict(selector, allowWatchBookmarks="true", timeoutSeconds=str(max(1, math.ceil(remaining))))
            if version:
                query["resourceVersion"] = version
            try:
                for event in self.api.watch(rtype.path(ns), query, read_timeout=min(remaining, WATCH_TICK_S)):
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":  # e.g. 410 Gone inside the stream
                        version = None
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event.get("type") == "BOOKMARK" or (obj.get("metadata") or {}).get("name") != name:
                        continue
                    current = None if event.get("type") == "DELETED" else obj
                    if current is not None and condition_met(current, condition):
                        return True, current
                    if current is not None and failed_for_good(rtype.kind, current, condition):
                        return False, current
                    reporter.show(current)
                    if time.monotonic() >= deadline:
                        break
            except ApiFailure as failure:
                if failure.code != 410:
                    raise self.api.error(failure, "watch", target) from None
                version = None

    # ---- inference

    def endpoint(self, name: str, namespace: str | None = None) -> tuple[str, str]:
        """(base URL, Host header): base from $LAB_INGRESS_URL plus any path of the service's
        ``status.url``; Host from ``status.url`` (the ingress routes by it)."""
        isvc = self.get("InferenceService", name, namespace)
        url = (isvc.get("status") or {}).get("url")
        ref = f"InferenceService {namespace or self.namespace}/{name}"
        if not url:
            raise NotReady(diagnose(isvc, self.events("InferenceService", name, namespace)))
        parts = urlsplit(url)
        return self.ingress_url(f"{ref} is served at {url}, but") + parts.path.rstrip("/"), parts.hostname or ""

    def ingress_url(self, why: str = "") -> str:
        """$LAB_INGRESS_URL: where your ingress gateway answers (it routes by the Host header)."""
        ingress = os.environ.get(INGRESS_ENV)
        if not ingress:
            raise TargetUnavailable(
                f"{why or 'to reach a route'} the lab does not know how to reach your ingress gateway: "
                f"set {INGRESS_ENV} to its address, e.g. after `kubectl port-forward -n <gateway-namespace> "
                f"svc/<gateway-service> 8080:80` set {INGRESS_ENV}=http://127.0.0.1:8080, or in Python use "
                f"`with lab.port_forward('svc/<gateway-service>', 80, namespace='<gateway-namespace>') as fwd:` "
                f"and os.environ['{INGRESS_ENV}'] = fwd.url")
        return ingress.rstrip("/")

    def interceptor_url(self) -> str:
        """$LAB_INTERCEPTOR_URL: the HTTP add-on's proxy, e.g. a port-forward to it."""
        url = os.environ.get(INTERCEPTOR_ENV)
        if not url:
            raise TargetUnavailable(
                f"set {INTERCEPTOR_ENV} to where the KEDA HTTP add-on's interceptor answers, e.g. after "
                "`kubectl -n keda port-forward svc/keda-add-ons-http-interceptor-proxy 8081:8080` set "
                f"{INTERCEPTOR_ENV}=http://127.0.0.1:8081 (requests that bypass it are neither counted nor held)")
        return url.rstrip("/")

    def interceptor_holds(self) -> None:
        """None: the add-on's interceptor exports counts, not when each request was held and released."""
        return None

    def container_log(self, pod: str, container: str, namespace: str | None = None) -> str:
        ns = namespace or self.namespace
        path = f"/api/v1/namespaces/{ns}/pods/{pod}/log"
        try:
            return self.api.text(path, query={"container": container, "timestamps": "true"})
        except ApiFailure as failure:
            raise self.api.error(failure, "read the log of", Target(lookup("Pod"), ns, pod)) from None

    @contextlib.contextmanager
    def pod_url(self, pod: str, port: int, namespace: str | None = None) -> Iterator[str]:
        with self.port_forward(f"pod/{pod}", port, namespace=namespace) as forwarded:
            yield forwarded.url

    def infer(self, name: str, payload: dict[str, Any], protocol: str = "v2",
              model: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        if protocol not in ("v1", "v2"):
            raise LabError(f"protocol must be 'v1' or 'v2', got {protocol!r}")
        base, host = self.endpoint(name, namespace)
        model_name = model or name
        path = f"/v2/models/{model_name}/infer" if protocol == "v2" else f"/v1/models/{model_name}:predict"
        url = base + path
        try:
            response = httpx.post(url, json=payload, headers={"Host": host}, timeout=INFER_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise TargetUnavailable(f"POST {url} (Host: {host}) failed: {exc}. Is {INGRESS_ENV} right and the "
                                    f"port-forward to the ingress gateway still running?") from None
        if not response.is_success:
            try:
                said = json.dumps(response.json())
            except ValueError:
                said = response.text[:500]
            raise LabError(f"POST {url} (Host: {host}) answered {response.status_code}: {said}")
        return response.json()

    def call_as(self, labels: dict[str, str], namespace: str, isvc: str, path: str, method: str = "POST",
                payload: dict[str, Any] | None = None, timeout: float = 3.0,
                isvc_namespace: str | None = None) -> CallResult:
        """Runs an ephemeral curl pod with `labels` in `namespace` against the predictor Service, reads the status
        it printed from its log, and deletes it."""
        url = f"http://{predictor_host(isvc, isvc_namespace or self.namespace)}{path}"
        pod = caller_pod(labels, namespace, url, method, payload, timeout)
        name = pod["metadata"]["name"]
        self.apply(pod)
        try:
            self._wait_finished(name, namespace, CALLER_START_S + timeout)
            return parse_curl_status(self.container_log(name, "curl", namespace))
        finally:
            self.delete("Pod", name, namespace)

    def _wait_finished(self, name: str, namespace: str, timeout: float) -> dict[str, Any]:
        """The pod once it has Succeeded or Failed (curl exits non-zero on a timeout); LabError naming its state."""
        deadline = time.monotonic() + timeout
        while True:
            pod = self.get("Pod", name, namespace)
            status = pod.get("status") or {}
            if status.get("phase") in ("Succeeded", "Failed"):
                return pod
            if time.monotonic() > deadline:
                waiting = [(c.get("state") or {}).get("waiting") or {} for c in status.get("containerStatuses") or []]
                why = "; ".join(f"{w.get('reason')}: {w.get('message', '')}" for w in waiting if w) or \
                    f"phase {status.get('phase', 'unknown')}"
                raise LabError(f"call_as pod {namespace}/{name} did not finish within {timeout:g}s ({why})")
            time.sleep(POD_POLL_S)

    def flows(self, namespace: str | None = None, last: int | None = None) -> list[Flow]:
        """Hubble's flows through the hubble CLI; TargetUnavailable says how to enable Hubble if it is not reachable."""
        return hubble_flows(namespace, last)

    def port_forward(self, service_or_pod: str, remote_port: int, local_port: int = 0,
                     namespace: str | None = None):
        """A loopback port forwarded to a pod or service of the cluster; see `portforward.port_forward`."""
        return port_forward(namespace or self.namespace, service_or_pod, remote_port, local_port,
                            api_client=self.api.api_client)


class _Progress:
    """Prints condition changes of a wait, once the wait has lasted `after` seconds."""

    def __init__(self, out: TextIO, what: str, started: float, after: float):
        self.out, self.what, self.started, self.after = out, what, started, after
        self.last: str | None = None

    def show(self, obj: dict[str, Any] | None) -> None:
        elapsed = time.monotonic() - self.started
        state = condition_summary(obj) if obj is not None else "not created yet"
        if elapsed >= self.after and state != self.last:
            print(f"[{elapsed:5.0f}s] {self.what}: {state}", file=self.out, flush=True)
            self.last = state
