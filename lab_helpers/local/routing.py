"""The ingress and Gateway API controller of the local target: Ingress + HTTPRoute + Services -> route table.

Per Host, one `RouteTarget` per backend Service with its weight: an Ingress rule's backend gets
100, an HTTPRoute rule's ``backendRefs`` keep their weights (Gateway API default 1), so a Flagger
canary's 90/10 split is a weighted HTTPRoute as on a cluster. A target's backends are the pods the
Service selects, at the host port behind the Service's ``targetPort``, with their readiness.
A target's revision is the pod-template hash of the newest Deployment whose pods the Service
selects: it exists with 0 pods, so a request held while a revision scales from zero is released
to that same revision when its first pod is Ready.

Every Service is also served under its cluster DNS name, ``<service>.<namespace>.svc.cluster.local``,
and its short form ``<service>.<namespace>`` (what a pod's DNS search path completes, and what KServe
passes a transformer as ``--predictor_host``), as kube-proxy and cluster DNS make it reachable from any
pod (the direct path a network policy polices); an ingress or HTTPRoute host of the same name wins.

Simplified: path and header matches are not evaluated (the first rule of a host serves every
path), every HTTPRoute is attached to the lab's one gateway whatever its ``parentRefs`` say, and
when an Ingress and an HTTPRoute claim the same host the HTTPRoute wins.
"""
from __future__ import annotations

from typing import Any

from ..gateway.inference_logger import AgentConfig, InferenceLogger, agent_config
from ..gateway.interceptor import InterceptedRoute, Interceptor, parse_duration
from ..gateway.routes import Backend, Route, RouteTable, RouteTarget
from ..policy.identity import SERVICE_DOMAIN
from .controllers.base import DONE, Loop, Result, condition, ns, spec_hash
from .controllers.workloads import endpoints
from .pods import finished, host_port, port_mapping
from .store import Store, labels_match

GATEWAY_CONTROLLER = "lab.local/gateway"
NO_WORKLOAD = "no-workload"  # the revision of a Service that selects no Deployment's pods


def revision_of(store: Store, service: dict[str, Any]) -> str:
    """The template hash of the newest Deployment whose pod template the Service's selector matches."""
    selector = service["spec"].get("selector") or {}
    deployments = [d for d in store.list("Deployment", ns(service))
                   if selector and labels_match(d["spec"]["template"], selector)]
    if not deployments:
        return NO_WORKLOAD
    newest = max(deployments, key=lambda d: (d["metadata"].get("creationTimestamp", ""), d["metadata"]["name"]))
    return spec_hash(newest["spec"]["template"])


def _service_port(service: dict[str, Any], port: int | None) -> dict[str, Any]:
    """The Service's port entry a route names (the first when it names none)."""
    ports = service["spec"].get("ports") or []
    return next((p for p in ports if port is None or p.get("port") == port), ports[0] if ports else {})


def service_target(store: Store, namespace: str, name: str, port: int | None, weight: int) -> RouteTarget | None:
    service = store.find("Service", namespace, name)
    if service is None:
        return None
    chosen = _service_port(service, port)
    target_port = chosen.get("targetPort", chosen.get("port", 80))
    backends = []
    for pod, ready in endpoints(store, service):
        mapped = host_port(pod, target_port)
        if mapped and not finished(pod):
            backends.append(Backend(url=f"http://127.0.0.1:{mapped}", ready=ready))
    return RouteTarget(service=name, namespace=namespace, revision=revision_of(store, service), backends=backends,
                       weight=weight, port=int(chosen.get("port", 80)))


def service_routes(store: Store) -> dict[str, list[RouteTarget]]:
    """Each Service with a selector under its cluster DNS name and its short ``<service>.<namespace>``,
    at its first port."""
    routes = {}
    for service in store.list("Service"):
        if service["spec"].get("selector"):
            name = service["metadata"]["name"]
            target = service_target(store, ns(service), name, None, 100)
            if target is not None:
                routes[f"{name}.{ns(service)}{SERVICE_DOMAIN}"] = [target]
                routes[f"{name}.{ns(service)}"] = [target]
    return routes


def ingress_routes(store: Store) -> dict[str, list[RouteTarget]]:
    routes: dict[str, list[RouteTarget]] = {}
    for ingress in store.list("Ingress"):
        for rule in ingress["spec"].get("rules") or []:
            paths = (rule.get("http") or {}).get("paths") or []
            backend = ((paths[0].get("backend") or {}).get("service") or {}) if paths else {}
            target = service_target(store, ns(ingress), backend.get("name", ""),
                                    (backend.get("port") or {}).get("number"), 100)
            if rule.get("host") and target is not None:
                routes.setdefault(rule["host"].lower(), [target])
    return routes


def _backend_refs(route: dict[str, Any]) -> list[dict[str, Any]]:
    rules = route["spec"].get("rules") or []
    return [ref for ref in (rules[0].get("backendRefs") or []) if ref.get("kind", "Service") == "Service"] \
        if rules else []


def httproute_targets(store: Store, route: dict[str, Any]) -> tuple[list[RouteTarget], list[str]]:
    """The weighted targets of an HTTPRoute's first rule, and the backendRefs that name no Service."""
    targets, missing = [], []
    for ref in _backend_refs(route):
        target = service_target(store, ref.get("namespace") or ns(route), ref["name"], ref.get("port"),
                                int(ref.get("weight", 1)))
        if target is None:
            missing.append(ref["name"])
        elif all(t.key != target.key for t in targets):
            targets.append(target)
    return targets, missing


def _intercepted(store: Store, obj: dict[str, Any], service: str, port: int | None, hosts: list[str],
                 readiness: str | None) -> tuple[RouteTarget, InterceptedRoute]:
    """A missing Service is a target with no endpoints: requests are held, then answered 504 naming it."""
    target = service_target(store, ns(obj), service, port, 100)
    route = InterceptedRoute(ns(obj), obj["metadata"]["name"], tuple(h.lower() for h in hosts),
                             parse_duration(readiness), kind=obj["kind"],
                             missing_service=service if target is None else None)
    return target or RouteTarget(service=service, namespace=ns(obj), revision=NO_WORKLOAD), route


def interceptor_routes(store: Store) -> tuple[dict[str, list[RouteTarget]], list[InterceptedRoute]]:
    """The KEDA HTTP add-on's routes: hosts to their target Service, held at zero pods.

    An InterceptorRoute names its Service in ``target`` and its hosts in ``rules[].hosts``; the
    deprecated HTTPScaledObject in ``scaleTargetRef.service`` / ``port`` and ``hosts``, its hold in
    ``timeouts.conditionWait``. When both claim a host, the InterceptorRoute wins.
    """
    found = []
    for obj in store.list("HTTPScaledObject"):
        spec = obj["spec"]
        ref = spec.get("scaleTargetRef") or {}
        found.append(_intercepted(store, obj, ref.get("service", ""), ref.get("port"), spec.get("hosts") or [],
                                  (spec.get("timeouts") or {}).get("conditionWait")))
    for obj in store.list("InterceptorRoute"):
        spec = obj["spec"]
        found.append(_intercepted(store, obj, spec["target"]["service"], spec["target"].get("port"),
                                  [h for rule in spec.get("rules") or [] for h in rule.get("hosts") or []],
                                  (spec.get("timeouts") or {}).get("readiness")))
    hosts: dict[str, list[RouteTarget]] = {}
    by_host: dict[str, InterceptedRoute] = {}
    for target, route in found:
        for host in route.hosts:
            hosts[host], by_host[host] = [target], route
    return hosts, list({route.key: route for route in by_host.values()}.values())


def logging_agents(store: Store) -> dict[str, AgentConfig]:
    """{backend URL: agent configuration} of every running pod whose template asks for the inference logger."""
    agents = {}
    for pod in store.list("Pod"):
        config = agent_config(pod)
        if config is not None and not finished(pod):
            agents.update({f"http://127.0.0.1:{port}": config for port in port_mapping(pod).values()})
    return agents


def build_routes(store: Store) -> tuple[list[Route], dict[tuple[str, str], list[str]]]:
    """The route table, and per HTTPRoute (namespace, name) the backendRefs it could not resolve."""
    hosts = ingress_routes(store)
    unresolved: dict[tuple[str, str], list[str]] = {}
    for route in store.list("HTTPRoute"):
        targets, missing = httproute_targets(store, route)
        unresolved[(ns(route), route["metadata"]["name"])] = missing
        if targets and sum(t.weight for t in targets) > 0:
            for hostname in route["spec"].get("hostnames") or []:
                hosts[hostname.lower()] = targets
    return [Route(host=host, targets=targets) for host, targets in sorted(hosts.items())], unresolved


class RoutingLoop(Loop):
    """Keeps the gateway's route table equal to what Ingresses, HTTPRoutes, InterceptorRoutes and Services say."""

    name = "routing"
    watches = ("Ingress", "HTTPRoute", "InterceptorRoute", "HTTPScaledObject", "Service", "Pod", "Deployment")

    def __init__(self, store: Store, table: RouteTable, interceptor: Interceptor,
                 inference_logger: InferenceLogger | None = None):
        self.store, self.table, self.interceptor = store, table, interceptor
        self.inference_logger = inference_logger
        self._installed: list[Route] | None = None

    async def sync(self) -> Result:
        routes, unresolved = build_routes(self.store)
        intercepted_hosts, intercepted = interceptor_routes(self.store)
        taken = {route.host for route in routes}
        below = {**service_routes(self.store), **intercepted_hosts}  # the ones an ingress host name overrides
        routes = sorted(routes + [Route(host=host, targets=targets) for host, targets in below.items()
                                  if host not in taken], key=lambda route: route.host)
        self.interceptor.set_routes([r for r in intercepted if not taken.intersection(r.hosts)])
        if self.inference_logger is not None:
            self.inference_logger.set_agents(logging_agents(self.store))
        if routes != self._installed:  # an unchanged table is not swapped (no waiter woken for nothing)
            self.table.replace(routes)
            self._installed = routes
        for (namespace, name), missing in unresolved.items():
            self._route_status(namespace, name, missing)
        for route in self.store.list("InterceptorRoute"):
            self._interceptor_route_status(route)
        return DONE

    def _interceptor_route_status(self, route: dict[str, Any]) -> None:
        """The add-on's operator marks every InterceptorRoute it has read Ready (Reconciled); a missing target
        Service shows at request time, in the 504 that names it."""
        previous = (route.get("status") or {}).get("conditions")
        ready = condition("Ready", True, "Reconciled", "InterceptorRoute reconciled", previous)
        ready["observedGeneration"] = route["metadata"].get("generation", 1)
        self.store.set_status("InterceptorRoute", ns(route), route["metadata"]["name"], {"conditions": [ready]})

    def _route_status(self, namespace: str, name: str, missing: list[str]) -> None:
        """Gateway API status: Accepted by the lab's gateway, ResolvedRefs False naming a missing Service."""
        route = self.store.find("HTTPRoute", namespace, name)
        if route is None:
            return
        parents = route["spec"].get("parentRefs") or [{"name": "lab-gateway"}]
        previous = next(iter((route.get("status") or {}).get("parents") or []), {}).get("conditions")
        generation = route["metadata"].get("generation", 1)
        conditions = [
            condition("Accepted", True, "Accepted", "attached to the local target's gateway", previous),
            condition("ResolvedRefs", not missing, "ResolvedRefs" if not missing else "BackendNotFound",
                      "" if not missing else f"Service(s) not found: {', '.join(missing)}", previous)]
        for cond in conditions:
            cond["observedGeneration"] = generation
        status = {"parents": [{"parentRef": parent, "controllerName": GATEWAY_CONTROLLER, "conditions": conditions}
                              for parent in parents]}
        self.store.set_status("HTTPRoute", namespace, name, status)

