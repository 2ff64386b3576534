"""The local target's API server: apply (validated, all-or-nothing), get/list/delete, events. Token-protected."""
from __future__ import annotations

import hmac
from typing import Any, Callable

from aiohttp import web

from ..errors import LabError, ManifestError, NotFound
from ..manifests.loading import Document
from ..manifests.validation import validate_documents
from .catalogue import BUILTIN_KINDS
from .controllers.base import ns
from .store import CLUSTER, Store


def served_kinds(store: Store) -> dict[str, tuple[str, bool]]:
    """kind -> (apiVersion, namespaced): built-ins plus every kind an installed CRD serves."""
    kinds = dict(BUILTIN_KINDS)
    for crd in store.list("CustomResourceDefinition"):
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("storage"):
                kinds[spec["names"]["kind"]] = (f"{spec['group']}/{version['name']}", spec["scope"] == "Namespaced")
    return kinds


def check_served(store: Store, docs: list[Document]) -> None:
    """Like the API server's REST mapping: a kind whose CRD is not installed cannot be applied."""
    kinds = served_kinds(store)
    for doc in docs:
        kind, api_version = doc.obj.get("kind"), doc.obj.get("apiVersion")
        served = kinds.get(kind)
        if served is None or served[0] != api_version:
            raise ManifestError(doc.origin, "kind", f'no matches for kind "{kind}" in version "{api_version}" '
                                                    "(ensure CRDs are installed first)")
        if served[1]:
            namespace = doc.obj["metadata"].get("namespace")
            if not namespace:
                raise ManifestError(doc.origin, "metadata.namespace", "a namespace for this namespaced kind")
            if store.find("Namespace", CLUSTER, namespace) is None and not any(
                    d.obj.get("kind") == "Namespace" and d.obj["metadata"]["name"] == namespace for d in docs):
                raise ManifestError(doc.origin, "metadata.namespace", f'namespaces "{namespace}" not found')


def descendants(store: Store, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Objects owned by `obj`, recursively (ISVC -> Deployment -> Pods, Service, Ingress)."""
    found, frontier = [], [obj["metadata"]["uid"]]
    everything = store.iter_all()
    while frontier:
        uid = frontier.pop()
        for other in everything:
            if any(r.get("uid") == uid for r in other["metadata"].get("ownerReferences") or []):
                found.append(other)
                frontier.append(other["metadata"]["uid"])
    return found


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def make_app(store: Store, token: str, status: Callable[[], dict]) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler):
        if request.path != "/healthz":
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given, token):
                return _error(401, "missing or wrong token (read it from .lab/token)")
        try:
            return await handler(request)
        except NotFound as exc:
            return _error(404, str(exc))
        except ManifestError as exc:
            return _error(422, str(exc), document=exc.document, path=exc.path, expected=exc.expected)
        except LabError as exc:
            return _error(400, str(exc))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def apply(request: web.Request) -> web.Response:
        body = await request.json()
        docs = [Document(obj=d["object"], origin=d.get("origin", f"document {i}"))
                for i, d in enumerate(body.get("documents") or [])]
        validate_documents(docs)
        check_served(store, docs)
        applied = [store.apply(doc.obj) for doc in docs]  # each write wakes the loops that watch it
        return web.json_response({"applied": applied})

    def _ref(request: web.Request) -> tuple[str, str, str]:
        namespace = request.match_info["namespace"]
        return request.match_info["kind"], "" if namespace == "_" else namespace, request.match_info["name"]

    async def get(request: web.Request) -> web.Response:
        return web.json_response(store.get(*_ref(request)))

    async def list_(request: web.Request) -> web.Response:
        labels = dict(pair.split("=", 1) for pair in request.query.getall("label", []))
        return web.json_response({"items": store.list(request.match_info["kind"], request.query.get("namespace"),
                                                      labels)})

    async def delete(request: web.Request) -> web.Response:
        deleted = store.delete(*_ref(request))
        return web.json_response({"deleted": deleted})

    async def events(request: web.Request) -> web.Response:
        kind, namespace, name = _ref(request)
        obj = store.get(kind, namespace, name)
        refs = [(kind, namespace, name)]
        if request.query.get("children", "1") == "1":
            refs += [(o["kind"], ns(o), o["metadata"]["name"]) for o in descendants(store, obj)]
        return web.json_response({"items": store.events(refs)})

    async def status_(_: web.Request) -> web.Response:
        return web.json_response(status())

    app = web.Application(middlewares=[auth], client_max_size=16 * 2**20)
    app.add_routes([
        web.get("/healthz", healthz), web.get("/status", status_), web.post("/apply", apply),
        web.get("/objects/{kind}", list_), web.get("/objects/{kind}/{namespace}/{name}", get),
        web.delete("/objects/{kind}/{namespace}/{name}", delete),
        web.get("/events/{kind}/{namespace}/{name}", events),
    ])
    return app
