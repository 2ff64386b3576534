"""kmock as the Kubernetes API server for the `kubernetes` target's unit tests.

kmock's aiohttp server runs in a background thread with its own event loop, so the synchronous
`kubernetes` client under test talks to it over real loopback HTTP, through a kubeconfig written
to tmp_path. kmock 0.8 differs from a real API server in ways these tests need; the differences
are filled in HERE (never in product code), in `ApiServerMock`:

- server-side apply (PATCH application/apply-patch+yaml) of an object that does not exist yet
  creates it (kmock answers 404); ``dryRun=All`` changes nothing (kmock ignores it);
- a missing object answers a real API server's 404 Status (``details.name/kind/group``);
- ``labelSelector`` (equality) and ``fieldSelector`` (dotted-path equality) filter lists and
  watches (kmock ignores both).
"""
from __future__ import annotations

import asyncio
import copy
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import attrs
import httpx
import kmock
import pytest
import yaml

from lab_helpers.kube.client import KubernetesLab
from lab_helpers.kube.resources import KINDS

APPLY = "application/apply-patch+yaml"


def _is_apply(request: kmock.Request) -> bool:
    return request.method == kmock.method.PATCH and request.headers.get("Content-Type", "").startswith(APPLY)


def is_dry_run_apply(request: kmock.Request) -> bool:
    return _is_apply(request) and request.params.get("dryRun") == "All"


def is_real_apply(request: kmock.Request) -> bool:
    return _is_apply(request) and "dryRun" not in request.params


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def _lookup(obj: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _selected(request: kmock.Request, obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, request.params.get("labelSelector", "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    for term in filter(None, request.params.get("fieldSelector", "").split(",")):
        path, _, value = term.partition("=")
        if str(_lookup(obj, path)) != value:
            return False
    return True


_NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)$")
_ACTIONS = {kmock.method.GET: kmock.action.FETCH, kmock.method.PATCH: kmock.action.UPDATE,
            kmock.method.DELETE: kmock.action.DELETE}


def _as_namespace_request(request: kmock.Request) -> kmock.Request:
    """kmock reads /api/v1/namespaces/NAME as "namespace NAME" rather than "the Namespace object NAME"."""
    match = _NAMESPACE_PATH.match(request.url.path)
    if not match or request.method not in _ACTIONS:
        return request
    return attrs.evolve(request, resource=kmock.resource("", "v1", "namespaces"), namespace=None,
                        name=match.group(1), action=_ACTIONS[request.method])


class ApiServerMock(kmock.KubernetesEmulator):
    """kmock's emulator with the API-server behaviour listed in the module docstring."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # Above kmock's fallbacks, below any reaction a test adds (priority 0).
        (self ** -1)[is_dry_run_apply] << self._dry_run_preview

    def _dry_run_preview(self, request: kmock.Request) -> dict[str, Any]:
        key = (request.resource, request.namespace, request.name)
        if key in self.objects and not self.objects[key].deleted:
            return _merged(self.objects[key].raw, request.data)
        return request.data

    async def _handle(self, request: kmock.Request) -> Any:
        fixed = _as_namespace_request(request)
        if fixed is not request:  # reactions find requests by identity in the recorded list
            self._requests[self._requests.index(request)] = request = fixed
        if is_dry_run_apply(request):
            return await kmock.RawHandler._handle(self, request)  # reactions only: no state change
        if is_real_apply(request):
            key = (request.resource, request.namespace, request.name)
            if key not in self.objects or self.objects[key].deleted:
                self.objects[key] = {}  # kmock then patches the new, empty object with the body
        try:
            return await super()._handle(request)
        except kmock.KubernetesObjectNotFoundError:
            resource = request.resource
            raise kmock.KubernetesError(
                status=404, reason="NotFound",
                message=f'{resource.plural}.{resource.group} "{request.name}" not found',
                details={"name": request.name, "group": resource.group, "kind": resource.plural}) from None

    async def _serve_list(self, request: kmock.Request) -> Any:
        listed = await super()._serve_list(request)
        return dict(listed, items=[o for o in listed["items"] if _selected(request, o)])

    async def _serve_watch(self, request: kmock.Request) -> Any:
        async for event in super()._serve_watch(request):
            if isinstance(event, dict) and not _selected(request, event.get("object") or {}):
                continue
            yield event


def status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    """A Kubernetes Status body, as a real API server sends with an error."""
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "code": code,
            "reason": reason, "message": message, "details": details}


@dataclass
class MockCluster:
    server: ApiServerMock
    url: str
    kubeconfig: Path
    loop: asyncio.AbstractEventLoop

    def lab(self, **options: Any) -> KubernetesLab:
        return KubernetesLab(kubeconfig=str(self.kubeconfig), **options)

    def put(self, kind: str, obj: dict[str, Any]) -> None:
        """Store an object as if a controller had created it (in kmock's own thread)."""
        rtype = KINDS[kind]
        key = (resource_of(kind), obj["metadata"].get("namespace") if rtype.namespaced else None,
               obj["metadata"]["name"])

        async def store() -> None:
            self.server.objects[key] = dict(obj, apiVersion=rtype.api_version, kind=kind)
        asyncio.run_coroutine_threadsafe(store(), self.loop).result(timeout=5)

    def stored(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (resource_of(kind), namespace, name)
        if key not in self.server.objects or self.server.objects[key].deleted:
            return None
        return self.server.objects[key].raw

    def patch_status_later(self, delay: float, kind: str, namespace: str, name: str,
                           status_: dict[str, Any]) -> threading.Timer:
        """Act as the controller: PATCH the status subresource after `delay` s (a watch event follows)."""
        url = self.url + KINDS[kind].path(namespace, name, "status")

        def send() -> None:
            httpx.patch(url, json={"status": status_},
                        headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
        timer = threading.Timer(delay, send)
        timer.start()
        return timer

    def requests(self, criterion: Any = None) -> list[kmock.Request]:
        return list(self.server if criterion is None else self.server[criterion])


def write_kubeconfig(path: Path, server_url: str, context: str = "kmock") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "kmock", "cluster": {"server": server_url}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": context, "context": {"cluster": "kmock", "user": "tester", "namespace": "lab"}}],
    }))
    return path


def resource_of(kind: str) -> kmock.resource:
    rtype = KINDS[kind]
    return kmock.resource(rtype.group, rtype.version, rtype.plural)


def declare(server: ApiServerMock, kinds: Any) -> None:
    """Make kmock serve these kinds (lists, watches, discovery) even while no object exists."""
    for kind in kinds:
        rtype = KINDS[kind]
        server.resources[resource_of(kind)] = kmock.ResourceInfo(kind=kind, namespaced=rtype.namespaced,
                                                   verbs={"get", "list", "watch", "patch", "delete"})


@contextmanager
def running_mock_cluster(tmp_path: Path, kinds: Any = ()) -> Iterator[MockCluster]:
    """kmock on a free loopback port in a background thread, and a kubeconfig pointing at it."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        async with ApiServerMock() as server, kmock.Server(server) as http:
            declare(server, kinds)
            state.update(server=server, url=str(http.url).rstrip("/"), stop=stop)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True, name="kmock")
    thread.start()
    assert started.wait(timeout=10), "kmock did not start"
    try:
        yield MockCluster(state["server"], state["url"], write_kubeconfig(tmp_path / "kubeconfig", state["url"]),
                          loop)
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[MockCluster]:
    """A mock cluster serving every kind the lab knows, with no objects."""
    with running_mock_cluster(tmp_path, KINDS) as mock:
        yield mock


@pytest.fixture
def empty_cluster(tmp_path: Path) -> Iterator[MockCluster]:
    """A mock cluster that serves nothing beyond the bare API (no CRDs, no objects)."""
    with running_mock_cluster(tmp_path) as mock:
        yield mock
