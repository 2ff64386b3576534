"""The Cilium agent of the local target: policies, endpoints and the flow log, enforced at the gateway's edge.

What the real agent does per node, and what stands in for it here:

- **Endpoints and identities.** The CNI plugin asks the agent for an address when a pod starts; the
  agent allocates it (IPAM), derives the pod's security identity from its labels and records a
  ``CiliumEndpoint``. Here a caller is registered through the control plane's API
  (``PUT /cilium/endpoints``, what `call_as` uses): it gets its own loopback address 127.0.0.x and a
  CiliumEndpoint object in the store, so a restarted control plane knows every caller again.
- **Policy.** Every CiliumNetworkPolicy and NetworkPolicy is compiled (`policy.rules`) and pushed,
  with each Service's pods as a destination, into the gateway's enforcer in one swap
  (`policy.enforcement`). A CiliumNetworkPolicy gets the operator's ``Valid`` condition; one the
  local target cannot enforce is ``Valid: False`` naming the field, and is not enforced.
- **Flows.** Every verdict is a Hubble-shaped flow in a ring buffer (``GET /cilium/flows``).

Nothing is enforced until the ``cilium`` chart is installed (its CRD served), as on a cluster whose
network plugin does not enforce NetworkPolicy: the objects are accepted and ignored.
Simplified, and said here: only ingress to pods behind Services is policed, and only on requests
that pass through the gateway; Prometheus and the kubelet's probes reach pods directly. And any local
process may bind any 127.0.0.x address, as a process on a node could forge a pod's IP if nothing stopped
it: the address is an identity for teaching and testing, not a security boundary between local users.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from ...policy.enforcement import PolicyEnforcer, PolicyState
from ...policy.flows import FlowLog
from ...policy.identity import Identity, allocate_address
from ...policy.rules import CILIUM, NETWORK_POLICY, Destination, Policy, PolicyError, compile_policy
from ..pods import container_port
from ..store import Store, labels_match
from .base import DONE, Loop, Result, condition, ns

CRD_NAME = "ciliumnetworkpolicies.cilium.io"
ENDPOINT_KIND = "CiliumEndpoint"
ENDPOINT_API_VERSION = "cilium.io/v2"
NODE = "local-node"
VALID_MESSAGE = "Policy validation succeeded"  # the Cilium operator's wording


def agent_running(store: Store) -> bool:
    """The cilium chart is installed: its CRD is served (the local Flux installs it with the agent)."""
    return store.find("CustomResourceDefinition", "", CRD_NAME) is not None


def _pod_template(store: Store, service: dict[str, Any]) -> dict[str, Any] | None:
    """The pod labels and spec behind a Service: its newest Deployment's template, else a selected pod."""
    selector = service["spec"].get("selector") or {}
    if not selector:
        return None
    templates = sorted(((d["metadata"].get("creationTimestamp", ""), d["spec"]["template"])
                        for d in store.list("Deployment", ns(service))
                        if labels_match(d["spec"]["template"], selector)), key=lambda pair: pair[0])
    if templates:
        return templates[-1][1]
    pods = [p for p in store.list("Pod", ns(service)) if labels_match(p, selector)]
    return {"metadata": pods[0]["metadata"], "spec": pods[0]["spec"]} if pods else None


def destination_of(store: Store, service: dict[str, Any]) -> Destination | None:
    """The Service's pods as a policy destination, at the pod port its first port targets."""
    template = _pod_template(store, service)
    ports = service["spec"].get("ports") or []
    if template is None or not ports:
        return None
    pod = {"spec": template.get("spec") or {}}
    port = container_port(pod, ports[0].get("targetPort", ports[0].get("port")))
    if port is None:
        return None
    names = {p["name"]: int(p["containerPort"]) for c in pod["spec"].get("containers") or []
             for p in c.get("ports") or [] if p.get("name")}
    return Destination(ns(service), service["metadata"]["name"], dict(template["metadata"].get("labels") or {}),
                       port, names)


def _namespace_labels(store: Store) -> dict[str, dict[str, str]]:
    return {n["metadata"]["name"]: dict(n["metadata"].get("labels") or {}) for n in store.list("Namespace")}


def endpoint_name(labels: dict[str, str]) -> str:
    """One endpoint per label set in a namespace: the same caller always gets the same address."""
    digest = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:10]
    return f"caller-{digest}"


def endpoint_address(endpoint: dict[str, Any]) -> str | None:
    addressing = (((endpoint.get("status") or {}).get("networking") or {}).get("addressing") or [{}])
    return addressing[0].get("ipv4")


class CiliumAgent(Loop):
    """Keeps the gateway's enforcer equal to the policies, Services and endpoints in the store."""

    name = "cilium-agent"
    watches = (CILIUM, NETWORK_POLICY, "Service", "Deployment", "Pod", "Namespace", ENDPOINT_KIND,
               "CustomResourceDefinition")

    def __init__(self, store: Store, enforcer: PolicyEnforcer, flows: FlowLog):
        self.store, self.enforcer, self.flows = store, enforcer, flows

    async def sync(self) -> Result:
        self.enforcer.install(self.state())
        return DONE

    def state(self) -> PolicyState:
        """What the enforcer should hold now; writes each CiliumNetworkPolicy's Valid condition on the way."""
        if not agent_running(self.store):
            return PolicyState()
        policies: list[Policy] = []
        for kind in (CILIUM, NETWORK_POLICY):
            for obj in self.store.list(kind):
                try:
                    compiled, error = compile_policy(obj), None
                except PolicyError as exc:
                    compiled, error = [], str(exc)
                policies += compiled
                if kind == CILIUM:
                    self._valid(obj, error)
        destinations = {}
        for service in self.store.list("Service"):
            destination = destination_of(self.store, service)
            if destination is not None:
                selecting = tuple(p for p in policies if p.selects(destination.namespace, destination.labels))
                destinations[(destination.namespace, destination.service)] = (destination, selecting)
        namespaces = _namespace_labels(self.store)
        endpoints = {}
        for endpoint in self.store.list(ENDPOINT_KIND):
            address = endpoint_address(endpoint)
            if address:
                endpoints[address] = Identity(ns(endpoint), dict(endpoint["metadata"].get("labels") or {}),
                                              namespaces.get(ns(endpoint), {}))
        return PolicyState(destinations, endpoints)

    def _valid(self, policy: dict[str, Any], error: str | None) -> None:
        previous = (policy.get("status") or {}).get("conditions")
        valid = condition("Valid", error is None, "", error or VALID_MESSAGE, previous)
        self.store.set_status(CILIUM, ns(policy), policy["metadata"]["name"],
                              {**(policy.get("status") or {}), "conditions": [valid]})

    # ---- the agent's API: endpoint registration (what the CNI plugin asks) and the flow log (Hubble)

    def register(self, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
        """The caller's CiliumEndpoint, created with a free loopback address on first registration."""
        if self.store.find("Namespace", "", namespace) is None:
            raise LookupError(f'namespaces "{namespace}" not found: create it before calling from it')
        name = endpoint_name(labels)
        existing = self.store.find(ENDPOINT_KIND, namespace, name)
        if existing is not None and endpoint_address(existing):
            return existing
        taken = [a for a in (endpoint_address(e) for e in self.store.list(ENDPOINT_KIND)) if a]
        address = allocate_address(taken)
        self.store.apply({"apiVersion": ENDPOINT_API_VERSION, "kind": ENDPOINT_KIND,
                          "metadata": {"name": name, "namespace": namespace, "labels": labels}})
        identity = Identity(namespace, labels, _namespace_labels(self.store).get(namespace, {}))
        status = {"identity": {"labels": sorted(f"k8s:{k}={v}" for k, v in identity.selector_labels.items())},
                  "networking": {"addressing": [{"ipv4": address}], "node": NODE}, "state": "ready"}
        return self.store.set_status(ENDPOINT_KIND, namespace, name, status) or {}

    def routes(self) -> list[web.RouteDef]:
        """The agent's API, served by the control plane's (token-protected) API server."""
        async def register(request: web.Request) -> web.Response:
            try:
                body = await request.json()
                namespace, labels = body["namespace"], body["labels"]
            except (ValueError, KeyError, TypeError):
                return web.json_response({"error": "expected JSON {\"namespace\": ..., \"labels\": {...}}"},
                                         status=400)
            if not isinstance(namespace, str) or not isinstance(labels, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
                return web.json_response({"error": "namespace must be a string and labels a string-to-string "
                                                   "mapping"}, status=400)
            try:
                endpoint = self.register(namespace, labels)
            except LookupError as exc:
                return web.json_response({"error": str(exc)}, status=404)
            await self.store.settled()  # the enforcer knows the new address before the caller uses it
            return web.json_response(endpoint)

        async def flows(request: web.Request) -> web.Response:
            last = request.query.get("last", "")
            recent = self.flows.recent(request.query.get("namespace") or None, int(last) if last.isdigit() else None)
            return web.json_response({"flows": [flow.as_dict() for flow in recent]})

        return [web.put("/cilium/endpoints", register), web.get("/cilium/flows", flows)]
