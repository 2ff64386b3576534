"""`connect("local")`: the helper API over the local control plane's HTTP API."""
from __future__ import annotations

import contextlib
import functools
import sys
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import httpx

from ..api import Lab, Source
from ..conditions import condition_met, condition_summary, failed_for_good
from ..diagnosis import diagnose
from ..errors import LabError, ManifestError, NotFound, NotReady
from ..inference import caller_transport, checked_json, infer_path, post
from ..manifests.loading import is_cluster_scoped, load_documents
from ..paths import lab_home
from ..models.mlflow_server import ensure_mlflow_server
from ..policy.callers import CallResult, predictor_host, request_body
from ..policy.flows import Flow
from ..prom.client import PromClient
from .control import ensure_daemon
from .pods import host_port
from .prometheus import local_prom_client

POLL_SECONDS = 0.25


class LocalLab(Lab):
    target = "local"

    def __init__(self, namespace: str = "lab", home: Path | None = None):
        self.namespace = namespace
        self.home = home or lab_home()
        self._connect()
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})

    @functools.cached_property
    def prom(self) -> PromClient:
        """PromQL against the local target's Prometheus (runs once kube-prometheus-stack is installed)."""
        return local_prom_client(self.home)

    def tracking_uri(self) -> str:
        """The local target's own `mlflow server` on a loopback port, started (or reused) on demand."""
        return ensure_mlflow_server()

    def _connect(self) -> None:
        info = ensure_daemon(self.home)
        token = (self.home / "token").read_text().strip()
        self.gateway_url = f"http://127.0.0.1:{info['gateway_port']}"
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{info['api_port']}", timeout=30.0,
                                  headers={"Authorization": f"Bearer {token}"})

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One API call; if the daemon died, start it again (its store has every object) and retry once."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError:
            self._connect()
            response = self._http.request(method, path, **kwargs)
        body = response.json()
        if response.status_code == 404:
            raise NotFound(body["error"])
        if response.status_code == 422:
            raise ManifestError(body["document"], body["path"], body["expected"])
        if not response.is_success:
            raise LabError(body.get("error", response.text))
        return body

    def _ns(self, kind: str, namespace: str | None) -> str:
        return "_" if is_cluster_scoped(kind) else (namespace or self.namespace)

    def apply(self, source: Source, variables: dict[str, str] | None = None) -> list[dict[str, Any]]:
        docs = load_documents(source, self.variables(variables), namespace=self.namespace)
        payload = {"documents": [{"object": d.obj, "origin": d.origin} for d in docs]}
        return self._request("POST", "/apply", json=payload)["applied"]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self._request("GET", f"/objects/{kind}/{self._ns(kind, namespace)}/{name}")

    def list(self, kind: str, namespace: str | None = None,
             labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        params: list[tuple[str, str]] = [("label", f"{k}={v}") for k, v in (labels or {}).items()]
        if not is_cluster_scoped(kind):
            params.append(("namespace", namespace or self.namespace))
        return self._request("GET", f"/objects/{kind}", params=params)["items"]

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        self._request("DELETE", f"/objects/{kind}/{self._ns(kind, namespace)}/{name}")

    def events(self, kind: str, name: str, namespace: str | None = None,
               children: bool = True) -> list[dict[str, Any]]:
        return self._request("GET", f"/events/{kind}/{self._ns(kind, namespace)}/{name}",
                             params={"children": "1" if children else "0"})["items"]

    def wait_for(self, kind: str, name: str, condition: str = "Ready", namespace: str | None = None,
                 timeout: float = 120.0) -> dict[str, Any]:
        started = time.monotonic()
        last_line = None
        obj: dict[str, Any] = {"kind": kind, "metadata": {"name": name, "namespace": namespace or self.namespace}}
        while True:
            try:
                obj = self.get(kind, name, namespace)
            except NotFound:
                pass
            if condition_met(obj, condition):
                print(f"{kind} {name}: {condition} after {time.monotonic() - started:.1f} s", file=sys.stdout)
                return obj
            line = condition_summary(obj)
            if failed_for_good(kind, obj, condition):
                raise NotReady(diagnose(obj, self.events(kind, name, namespace)))
            if line != last_line:
                print(f"  [{time.monotonic() - started:5.1f} s] {kind} {name}: {line}", flush=True)
                last_line = line
            if time.monotonic() - started > timeout:
                events = self.events(kind, name, namespace) if "uid" in obj["metadata"] else []
                raise NotReady(diagnose(obj, events))
            time.sleep(POLL_SECONDS)

    def endpoint(self, name: str, namespace: str | None = None) -> tuple[str, str]:
        isvc = self.get("InferenceService", name, namespace)
        url = (isvc.get("status") or {}).get("url")
        if not url:
            raise LabError(f"InferenceService {name} has no status.url yet: wait for it to be Ready first")
        return self.gateway_url, urlparse(url).hostname

    def ingress_url(self) -> str:
        """The local gateway plays the ingress: it routes by the Host header."""
        return self.gateway_url

    def interceptor_url(self) -> str:
        """The local gateway is also the interceptor: it holds requests for InterceptorRoute hosts."""
        return self.gateway_url

    def interceptor_holds(self) -> list[dict[str, Any]]:
        """The gateway is the interceptor: it keeps its recent holds on its own /interceptor/holds."""
        response = httpx.get(f"{self.gateway_url}/interceptor/holds", timeout=10.0)
        response.raise_for_status()
        return response.json()["holds"]

    def container_log(self, pod: str, container: str, namespace: str | None = None) -> str:
        """The local kubelet writes each container's output to a file in the pod's folder (no timestamps added)."""
        path = self.home / "pods" / (namespace or self.namespace) / pod / f"{container}.log"
        if not path.exists():
            raise NotFound(f"no log for container {container} of pod {namespace or self.namespace}/{pod}: the pod "
                           "does not exist (any more) or the container has not started")
        return path.read_text(errors="replace")

    @contextlib.contextmanager
    def pod_url(self, pod: str, port: int, namespace: str | None = None) -> Iterator[str]:
        """Every local pod port is a loopback port already (no forward needed)."""
        mapped = host_port(self.get("Pod", pod, namespace), port)
        if mapped is None:
            raise LabError(f"pod {pod} has no process listening for its port {port} (yet)")
        yield f"http://127.0.0.1:{mapped}"

    def infer(self, name: str, payload: dict[str, Any], protocol: str = "v2", model: str | None = None,
              namespace: str | None = None) -> dict[str, Any]:
        base, host = self.endpoint(name, namespace)
        return checked_json(post(base, host, infer_path(model or name, protocol), payload), f"infer {name}")

    def call_as(self, labels: dict[str, str], namespace: str, isvc: str, path: str, method: str = "POST",
                payload: dict[str, Any] | None = None, timeout: float = 3.0,
                isvc_namespace: str | None = None) -> CallResult:
        """The caller's endpoint is registered with the local Cilium agent, which gives it a loopback address of
        its own (127.0.0.x); the request leaves from that address, so the gateway knows it by it alone."""
        endpoint = self._request("PUT", "/cilium/endpoints", json={"namespace": namespace, "labels": labels})
        address = endpoint["status"]["networking"]["addressing"][0]["ipv4"]
        headers = {"Host": predictor_host(isvc, isvc_namespace or self.namespace)}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            with httpx.Client(transport=caller_transport(address), timeout=timeout) as client:
                response = client.request(method, self.gateway_url + path, content=request_body(payload),
                                          headers=headers)
        except httpx.TimeoutException:
            return CallResult(None)
        return CallResult(response.status_code, response.text)

    def flows(self, namespace: str | None = None, last: int | None = None) -> list[Flow]:
        """The local Cilium agent's flow log (its ring buffer starts empty when the control plane restarts)."""
        params = {key: str(value) for key, value in (("namespace", namespace), ("last", last)) if value}
        return [Flow(**flow) for flow in self._request("GET", "/cilium/flows", params=params)["flows"]]
