"""The local target's API server: apply (validated, all-or-nothing), get/list/delete, events. Token-protected.

Every answer is JSON, errors included: ``{"error": ...}`` naming what is wrong, 4xx for a request that
is wrong (bad JSON, a body of the wrong shape, a bad label selector, an unknown path), 5xx only for a
fault of the server itself. After a write, the answer waits (bounded) until the control loops it woke
have run (`Store.settled`), so a read right after it sees its consequences: a Ready condition read
after a pod was deleted is computed from the pods that exist now.
"""
from __future__ import annotations

import hmac
import json
import logging
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


log = logging.getLogger(__name__)


class BadRequest(LabError):
    """A request the API cannot act on: its body or query is not what the endpoint takes (HTTP 400)."""


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest saying what it is instead."""
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{request.method} {request.path}: the body is not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise BadRequest(f"{request.method} {request.path}: expected a JSON object, got a JSON {_json_type(body)}")
    return body


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def apply_documents(body: dict[str, Any]) -> list[Document]:
    """The documents of an apply request: ``{"documents": [{"object": {...}, "origin": "..."}, ...]}``."""
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents:
        raise BadRequest('apply: expected {"documents": [{"object": {...}, "origin": "..."}, ...]} with at least '
                         f"one document, got documents={json.dumps(documents)[:80]}")
    docs = []
    for index, entry in enumerate(documents):
        if not isinstance(entry, dict) or "object" not in entry:
            raise BadRequest(f'apply: documents[{index}] must be an object with an "object" field, got '
                             f"{json.dumps(entry)[:80]}")
        docs.append(Document(obj=entry["object"], origin=str(entry.get("origin") or f"document {index}")))
    return docs


def label_selector(pairs: list[str]) -> dict[str, str]:
    """``label=key=value`` query parameters as a selector; BadRequest naming a pair that is not key=value."""
    selector = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadRequest(f"label selector {pair!r}: expected key=value")
        selector[key] = value
    return selector


def make_app(store: Store, token: str, status: Callable[[], dict]) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler):
        if request.path != "/healthz":
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return _error(401, "missing or wrong token (read it from .lab/token)")
        try:
            response = await handler(request)
        except NotFound as exc:
            return _error(404, str(exc))
        except ManifestError as exc:
            return _error(422, str(exc), document=exc.document, path=exc.path, expected=exc.expected)
        except LabError as exc:
            return _error(400, str(exc))
        except web.HTTPException as exc:  # no such path, or a method the path does not take
            return _error(exc.status, f"{request.method} {request.path}: {exc.reason}")
        except Exception:
            log.exception("API request %s %s failed", request.method, request.path)
            return _error(500, f"{request.method} {request.path}: the control plane failed (see .lab/daemon.log)")
        if request.method != "GET":
            await store.settled()
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def apply(request: web.Request) -> web.Response:
        docs = apply_documents(await json_object(request))
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
        labels = label_selector(request.query.getall("label", []))
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
