"""Talking to the Kubernetes API: finding the cluster, one JSON-over-HTTP layer, and API failures as lab errors.

Transport: `kubernetes.client.ApiClient` directly (``param_serialize`` + ``call_api``), not the
DynamicClient. The lab's kind table (`resources.py`) already pins every path, so the
DynamicClient's discovery would only add a round of requests per API group, a cache file, and an
opaque failure when a CRD is missing, which the lab reports better itself ("CRD X missing, run the
doctor"). `KubeApi` is the one place where HTTP failures become lab errors, so no raw ApiException
reaches a notebook.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from ..errors import Conflict, Forbidden, LabError, ManifestError, NotFound, TargetUnavailable
from .resources import ResourceType

REQUEST_TIMEOUT_S = 30.0

HOW_TO_POINT = (
    "Point the lab at a cluster: set KUBECONFIG=/path/to/kubeconfig (or pass kubeconfig=...); choose a "
    "context with connect('kubernetes', context='NAME'), `--context NAME` on the CLI, or make it current "
    "with `kubectl config use-context NAME`; `kubectl config get-contexts` lists them and "
    "`kubectl cluster-info` checks the current one."
)


# --------------------------------------------------------------------------- connection


def load_api_client(context: str | None = None, kubeconfig: str | None = None) -> tuple[k8s_client.ApiClient, str]:
    """ApiClient for `context` of `kubeconfig` (default: $KUBECONFIG, then ~/.kube/config).

    Inside a pod with no kubeconfig, the pod's service account is used. Returns the client and a
    label of the context for messages. Raises TargetUnavailable saying how to fix the setup.
    """
    spec = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    files = [str(Path(p).expanduser()) for p in spec.split(os.pathsep) if p]
    existing = [f for f in files if Path(f).is_file()]
    if not existing:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            try:
                configuration = k8s_client.Configuration()
                k8s_config.load_incluster_config(client_configuration=configuration)
            except k8s_config.ConfigException as exc:
                raise TargetUnavailable(f"in-cluster configuration failed: {exc}. {HOW_TO_POINT}") from None
            return k8s_client.ApiClient(configuration), "in-cluster service account"
        raise TargetUnavailable(f"no kubeconfig found (looked for {', '.join(files)}). {HOW_TO_POINT}")
    merged = os.pathsep.join(existing)
    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=merged)
    except (k8s_config.ConfigException, KeyError, TypeError, ValueError) as exc:
        raise TargetUnavailable(f"cannot read kubeconfig {merged}: {exc}. {HOW_TO_POINT}") from None
    names = [c["name"] for c in contexts or []]
    if context is not None and context not in names:
        raise TargetUnavailable(f"context {context!r} is not in kubeconfig {merged} (it has: "
                                f"{', '.join(names) or 'no contexts'}). {HOW_TO_POINT}")
    if context is None and not current:
        raise TargetUnavailable(f"kubeconfig {merged} has no current-context. {HOW_TO_POINT}")
    name = context or current["name"]
    try:
        api_client = k8s_config.new_client_from_config(config_file=merged, context=name, persist_config=False)
    except (k8s_config.ConfigException, KeyError, TypeError, ValueError, OSError) as exc:
        raise TargetUnavailable(f"cannot load context {name!r} from {merged}: {exc}. {HOW_TO_POINT}") from None
    return api_client, name


# --------------------------------------------------------------------------- transport


@dataclass(frozen=True)
class Target:
    """What a request is about, for error messages: ``InferenceService lab/iris``."""
    rtype: ResourceType
    namespace: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        scoped = self.rtype.namespaced and self.namespace
        if self.name:
            return f"{self.rtype.kind} {self.namespace + '/' if scoped else ''}{self.name}"
        return f"{self.rtype.kind} objects" + (f" in namespace {self.namespace}" if scoped else "")


class ApiFailure(Exception):
    """A non-2xx answer; internal to this package, always turned into a LabError by `KubeApi.error`."""

    def __init__(self, code: int, body: bytes):
        self.code = code
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            parsed = {}
        self.status: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        self.message: str = self.status.get("message") or body.decode("utf-8", "replace")[:500] or f"HTTP {code}"
        self.details: dict[str, Any] = self.status.get("details") or {}
        super().__init__(f"{code}: {self.message}")

    @property
    def namespace_missing(self) -> bool:
        return self.code == 404 and self.details.get("kind") == "namespaces"


# Strict field validation names the unknown field only in the message.
_FIELD_IN_MESSAGE = (re.compile(r'unknown field "([^"]+)"'),
                     re.compile(r"\.?([\w.\[\]-]+): field not declared in schema"))


def _manifest_error(failure: ApiFailure, document: str) -> ManifestError:
    causes = failure.details.get("causes") or []
    if causes:
        first, rest = causes[0], causes[1:]
        expected = first.get("message") or first.get("reason") or failure.message
        if rest:
            expected += "; also " + "; ".join(f"{c.get('field') or '<root>'}: {c.get('message', '')}" for c in rest)
        return ManifestError(document, first.get("field") or "", expected)
    for pattern in _FIELD_IN_MESSAGE:
        if match := pattern.search(failure.message):
            return ManifestError(document, match.group(1), failure.message)
    return ManifestError(document, "", failure.message)


class KubeApi:
    """JSON over the ApiClient's HTTP pool; maps every failure to a lab error that says what to do."""

    def __init__(self, api_client: k8s_client.ApiClient, context: str):
        self.api_client = api_client
        self.context = context

    def _send(self, method: str, path: str, query: dict[str, str] | None, body: Any,
              content_type: str | None, timeout: Any) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        try:
            serialized = self.api_client.param_serialize(
                method=method, resource_path=path, query_params=list((query or {}).items()),
                header_params=headers, body=body, auth_settings=["BearerToken"])
            return self.api_client.call_api(*serialized[:4], _request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TargetUnavailable(f"cannot reach the Kubernetes API of context {self.context!r} "
                                    f"({self.api_client.configuration.host}): {exc}. {HOW_TO_POINT}") from None
        except ApiException as exc:  # the REST layer reports TLS failures this way
            raise TargetUnavailable(f"TLS to the Kubernetes API of context {self.context!r} failed: {exc.reason}. "
                                    f"{HOW_TO_POINT}") from None
        except k8s_config.ConfigException as exc:  # exec/OIDC credential plugins refresh here
            raise TargetUnavailable(f"credentials of context {self.context!r} could not be refreshed: {exc}. "
                                    f"{HOW_TO_POINT}") from None

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
                content_type: str | None = None, timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        """Send and parse JSON; raises ApiFailure on a non-2xx answer (callers map it with `error`)."""
        data = self._read(method, path, query, body, content_type, timeout)
        return json.loads(data) if data else {}

    def text(self, path: str, *, query: dict[str, str] | None = None, timeout: float = REQUEST_TIMEOUT_S) -> str:
        """GET a plain-text subresource (a pod's ``log``); raises ApiFailure on a non-2xx answer."""
        return self._read("GET", path, query, None, None, timeout).decode("utf-8", "replace")

    def _read(self, method: str, path: str, query: dict[str, str] | None, body: Any, content_type: str | None,
              timeout: float) -> bytes:
        response = self._send(method, path, query, body, content_type, timeout)
        data = response.read()
        if not 200 <= response.status < 300:
            raise ApiFailure(response.status, data)
        return data

    def call(self, verb: str, target: Target, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """`request`, with failures turned into lab errors naming `verb` and `target`."""
        try:
            return self.request(method, path, **kwargs)
        except ApiFailure as failure:
            raise self.error(failure, verb, target) from None

    def watch(self, path: str, query: dict[str, str], read_timeout: float) -> Iterator[dict[str, Any]]:
        """Watch events until the server ends the stream or nothing arrives for `read_timeout` seconds."""
        response = self._send("GET", path, dict(query, watch="true"), None, None, (10.0, read_timeout))
        if not 200 <= response.status < 300:
            raise ApiFailure(response.status, response.read())
        raw = response.response
        try:
            for line in iter_resp_lines(raw):
                yield json.loads(line)
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError):
            return
        finally:
            raw.close()  # never hand a half-read stream back to the connection pool
            raw.release_conn()

    def version(self) -> dict[str, Any]:
        try:
            return self.request("GET", "/version", timeout=10.0)
        except ApiFailure as failure:
            if failure.code == 401:
                raise self.error(failure, "get", None) from None
            raise TargetUnavailable(f"the Kubernetes API of context {self.context!r} answered {failure}. "
                                    f"{HOW_TO_POINT}") from None

    def error(self, failure: ApiFailure, verb: str, target: Target | None, document: str | None = None) -> LabError:
        """The lab error for an API failure: what was tried, what the server said, what to do next."""
        what = f"{verb} {target}" if target else verb
        said = failure.message
        if failure.code == 401:
            return TargetUnavailable(f"the API server of context {self.context!r} rejected your credentials "
                                     f"(401) on {what}: log in again or refresh the token in your kubeconfig "
                                     f"(`kubectl auth whoami` shows who you are). Server said: {said}")
        if failure.code == 403:
            rtype = target.rtype if target else None
            scope = f" in namespace {target.namespace}" if target and target.namespace and rtype.namespaced else ""
            resource = rtype.qualified if rtype else "this API"
            check = f"kubectl auth can-i {verb} {resource}" + (f" -n {target.namespace}" if scope else "")
            return Forbidden(f"cannot {verb} {resource}{scope} ({what}): RBAC on context {self.context!r} does "
                             f"not allow your identity to do this. Ask a cluster admin for a Role/ClusterRole "
                             f"granting '{verb}' on '{resource}'; check with `{check}`. Server said: {said}")
        if document is not None and failure.code in (400, 422):
            return _manifest_error(failure, document)
        if failure.code == 404 and target is not None:
            if failure.namespace_missing and target.rtype.kind != "Namespace":
                namespace = failure.details.get("name") or target.namespace
                return NotFound(f"{what}: namespace {namespace!r} does not exist on context {self.context!r}; "
                                f"create it (`kubectl create namespace {namespace}`) or apply a Namespace first")
            if failure.details.get("name") or not target.rtype.is_custom:
                return NotFound(f"{target} not found on context {self.context!r}")
            return NotFound(f"{what}: {target.rtype.kind} ({target.rtype.api_version}) is not served by this "
                            f"cluster, so its CRD {target.rtype.crd_name} is missing; "
                            f"`python -m lab_helpers doctor --target kubernetes` lists what to install")
        if failure.code == 409:
            hint = " (wait until its deletion has finished)" if "being deleted" in said else ""
            return Conflict(f"{what} conflicts with the cluster's state{hint}: {said}")
        if failure.code == 422:
            return _manifest_error(failure, str(target) if target else what)
        return LabError(f"the API server answered {failure.code} to {what}: {said}")
