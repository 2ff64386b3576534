"""CiliumNetworkPolicy and NetworkPolicy, compiled once and evaluated per request as Cilium does (ingress).

Semantics mirrored (https://docs.cilium.io/en/stable/security/policy/ and its ``layer7`` page):

- A pod selected by any policy with an ingress section is **default-deny** for ingress; a pod no
  policy selects accepts everything. Policies only allow, and they add up: a request is allowed if
  any rule of any selecting policy allows it.
- ``endpointSelector`` (and a NetworkPolicy's ``podSelector``) selects pods of the policy's own
  namespace. A ``fromEndpoints`` selector without a namespace label selects peers in the policy's
  namespace only; ``k8s:io.kubernetes.pod.namespace`` widens it. Selector keys may carry the
  ``k8s:`` or ``any:`` source prefix. An ingress rule without ``from*`` allows every source.
- ``toPorts`` are the *pod's* ports (not the Service's). L7 ``rules.http`` entries are RE2 regexes
  that must match the **whole** method, ``:path`` (query string included) and ``:authority``; the
  port's rules of all matching policies are combined, and if any matching rule allows the port with
  no L7 rules, the L7 rules of the others have no effect.
- An L3/L4 denial drops the packets; an L7 denial is answered ``403 Access denied`` by Cilium's Envoy.
- The node itself (identity ``host``) always reaches its pods: ``allow-localhost`` is ``auto``, which the agent
  turns into ``always`` when it runs in Kubernetes (so the kubelet's probes work under any policy).

Not evaluated here, and rejected with a message naming the field rather than silently ignored:
egress rules, deny rules, CIDR and FQDN peers, ``fromRequires``, ``headerMatches``, NetworkPolicy
``ipBlock``. CiliumClusterwideNetworkPolicy is not handled.
"""
from __future__ import annotations

import re
import functools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .identity import NAMESPACE_LABEL, Identity

RUNBOOK = "runbooks/caller-denied.md"
CILIUM = "CiliumNetworkPolicy"
NETWORK_POLICY = "NetworkPolicy"
_SOURCE_PREFIXES = ("k8s:", "any:")
_ENTITIES = {"all": lambda identity: True, "world": lambda identity: identity.reserved == "world",
             "host": lambda identity: identity.reserved == "host",
             "cluster": lambda identity: identity.reserved != "world"}
_UNSUPPORTED_CILIUM = ("egress", "egressDeny", "ingressDeny")
_UNSUPPORTED_CILIUM_PEERS = ("fromCIDR", "fromCIDRSet", "fromRequires", "fromGroups", "fromNodes")


class PolicyError(ValueError):
    """A policy the local agent cannot enforce; the message names the field (it goes into the policy's status)."""


def _key(key: str) -> str:
    for prefix in _SOURCE_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class Selector:
    """A compiled LabelSelector (matchLabels + matchExpressions); empty selects everything."""

    labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, frozenset[str]], ...] = ()  # (key, operator, values)

    def names(self, key: str) -> bool:
        """Whether the selector constrains `key`."""
        return any(k == key for k, _ in self.labels) or any(k == key for k, _, _ in self.expressions)

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.labels:
            if labels.get(key) != value:
                return False
        for key, operator, values in self.expressions:
            present = key in labels
            if operator == "In":
                ok = present and labels[key] in values
            elif operator == "NotIn":
                ok = not present or labels[key] not in values
            else:
                ok = present == (operator == "Exists")
            if not ok:
                return False
        return True


def _key(key: str) -> str:
    for prefix in _SOURCE_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def compile_selector(selector: Mapping[str, Any] | None, where: str) -> Selector:
    """A LabelSelector with Cilium's source prefixes taken off its keys (``k8s:app`` selects label ``app``).

    Raises PolicyError for an operator that is not In, NotIn, Exists or DoesNotExist.
    """
    selector = selector or {}
    expressions = []
    for index, expression in enumerate(selector.get("matchExpressions") or []):
        operator = expression.get("operator")
        if operator not in _OPERATORS:
            raise PolicyError(f"{where}.matchExpressions[{index}].operator: {operator!r} is not one of "
                              f"{', '.join(_OPERATORS)}")
        expressions.append((_key(str(expression.get("key", ""))), operator,
                            frozenset(str(v) for v in expression.get("values") or [])))
    labels = tuple((_key(str(k)), str(v)) for k, v in (selector.get("matchLabels") or {}).items())
    return Selector(labels, tuple(expressions))


@dataclass(frozen=True)
class Peer:
    """One source selector of a rule: Cilium ``fromEndpoints``/``fromEntities`` or a NetworkPolicy ``from`` entry."""

    selector: Selector | None = None            # on the identity's labels; None = any pod
    namespace: str | None = None                # only pods of this namespace
    namespace_selector: Selector | None = None  # NetworkPolicy: on the pod's namespace's labels
    entity: str | None = None                   # Cilium fromEntities

    def matches(self, source: Identity) -> bool:
        if self.entity is not None:
            return _ENTITIES[self.entity](source)
        if source.reserved:  # only a selector naming the reserved label, with no namespace, selects it
            return (self.namespace is None and self.namespace_selector is None and self.selector is not None
                    and self.selector.matches(source.selector_labels))
        if self.namespace is not None and source.namespace != self.namespace:
            return False
        if self.namespace_selector is not None and not self.namespace_selector.matches(source.pod_namespace_labels):
            return False
        labels = source.labels if self.namespace_selector is not None else source.selector_labels
        return self.selector is None or self.selector.matches(labels)


@dataclass(frozen=True)
class HTTPRule:
    """One ``rules.http`` entry: every field given must match the whole request value."""

    method: re.Pattern[str] | None = None
    path: re.Pattern[str] | None = None
    host: re.Pattern[str] | None = None
    headers: tuple[tuple[str, str | None], ...] = ()  # (name, value) present; value None = any value

    def matches(self, method: str, path: str, host: str, headers: Mapping[str, str]) -> bool:
        return ((self.method is None or self.method.fullmatch(method) is not None)
                and (self.path is None or self.path.fullmatch(path) is not None)
                and (self.host is None or self.host.fullmatch(host) is not None)
                and all(name in headers and (value is None or headers[name] == value) for name, value in self.headers))

    @functools.cached_property
    def text(self) -> str:
        """How the rule reads in a flow's reason (built once: reasons are written per request)."""
        parts = [f"{name}={getattr(self, name).pattern!r}" for name in ("method", "path", "host")
                 if getattr(self, name) is not None]
        return "{" + ", ".join(parts + [f"header {n}" for n, _ in self.headers]) + "}"


@dataclass(frozen=True)
class PortRule:
    """Ports of one ``toPorts``/``ports`` entry and their L7 rules (None = no L7 rules: all requests)."""

    ports: tuple[tuple[int | str, int | None, str], ...]  # (port or port name, endPort, protocol); () = all ports
    http: tuple[HTTPRule, ...] | None = None

    def covers(self, port: int, port_names: Mapping[str, int]) -> bool:
        if not self.ports:
            return True
        for first, end, protocol in self.ports:
            number = port_names.get(first) if isinstance(first, str) else first
            if protocol in ("TCP", "ANY") and number is not None and (
                    number == 0 or number <= port <= (end if end is not None else number)):
                return True
        return False


@dataclass(frozen=True)
class IngressRule:
    peers: tuple[Peer, ...] | None  # None = every source
    ports: tuple[PortRule, ...]     # () = every port, no L7 rules


@dataclass(frozen=True)
class Policy:
    kind: str
    namespace: str
    name: str
    selector: Selector
    enforces_ingress: bool
    rules: tuple[IngressRule, ...]

    @functools.cached_property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        return self.enforces_ingress and namespace == self.namespace and self.selector.matches(labels)


@dataclass(frozen=True)
class Destination:
    """The pods behind a Service as policies see them: namespace, pod labels, the pod port the Service targets."""

    namespace: str
    service: str
    labels: Mapping[str, str]
    port: int
    port_names: Mapping[str, int]

    @functools.cached_property
    def ref(self) -> str:
        """``<namespace>/<service>``, as flows name a destination."""
        return f"{self.namespace}/{self.service}"

    @functools.cached_property
    def text(self) -> str:
        return f"{self.ref}:{self.port}"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    layer: str        # "L3_L4" or "L7": where the decision was made
    reason: str
    policies: tuple[str, ...] = ()  # the policies that select the destination


def _regex(value: Any, where: str) -> re.Pattern[str] | None:
    if value in (None, ""):
        return None
    try:
        return re.compile(str(value))
    except re.error as exc:
        raise PolicyError(f"{where}: {value!r} is not a valid regular expression ({exc})") from None


def _http_rules(rules: Any, where: str) -> tuple[HTTPRule, ...] | None:
    if not rules:
        return None
    unknown = sorted(set(rules) - {"http"})
    if unknown:
        raise PolicyError(f"{where}.{unknown[0]}: only http L7 rules are enforced by the local target")
    compiled = []
    for index, rule in enumerate(rules.get("http") or []):
        here = f"{where}.http[{index}]"
        if rule.get("headerMatches"):
            raise PolicyError(f"{here}.headerMatches: not enforced by the local target (use headers)")
        headers = []
        for header in rule.get("headers") or []:
            name, sep, value = str(header).partition(":")
            headers.append((name.strip().lower(), value.strip() if sep else None))
        compiled.append(HTTPRule(_regex(rule.get("method"), f"{here}.method"), _regex(rule.get("path"), f"{here}.path"),
                                 _regex(rule.get("host"), f"{here}.host"), tuple(headers)))
    return tuple(compiled)


def _port(value: Any) -> int | str:
    return int(value) if isinstance(value, int) or str(value).isdigit() else str(value)


def _cilium_rule(rule: dict[str, Any], namespace: str, where: str) -> IngressRule:
    for field in _UNSUPPORTED_CILIUM_PEERS:
        if rule.get(field):
            raise PolicyError(f"{where}.{field}: not enforced by the local target (it knows callers by pod labels)")
    peers: list[Peer] = []
    for selector in rule.get("fromEndpoints") or []:
        compiled = compile_selector(selector, f"{where}.fromEndpoints[{len(peers)}]")
        peers.append(Peer(compiled, None if compiled.names(NAMESPACE_LABEL) else namespace))
    for index, entity in enumerate(rule.get("fromEntities") or []):
        if entity not in _ENTITIES:
            raise PolicyError(f"{where}.fromEntities[{index}]: {entity!r} is not enforced by the local target "
                              f"(one of {', '.join(_ENTITIES)})")
        peers.append(Peer(entity=entity))
    has_peers = "fromEndpoints" in rule or "fromEntities" in rule
    ports = tuple(
        PortRule(tuple((_port(p.get("port", 0)), p.get("endPort"), p.get("protocol", "ANY"))
                       for p in entry.get("ports") or []),
                 _http_rules(entry.get("rules"), f"{where}.toPorts[{index}].rules"))
        for index, entry in enumerate(rule.get("toPorts") or []))
    return IngressRule(tuple(peers) if has_peers else None, ports)


def _cilium_policies(obj: dict[str, Any]) -> list[Policy]:
    meta, spec_root = obj["metadata"], obj.get("spec")
    namespace, name = meta.get("namespace", ""), meta["name"]
    specs = ([("spec", obj["spec"])] if spec_root else []) + [
        (f"specs[{i}]", s) for i, s in enumerate(obj.get("specs") or [])]
    policies = []
    for where, spec in specs:
        for field in _UNSUPPORTED_CILIUM:
            if spec.get(field):
                raise PolicyError(f"{where}.{field}: not enforced by the local target (only ingress allow rules)")
        if "nodeSelector" in spec:
            raise PolicyError(f"{where}.nodeSelector: host policies are not enforced by the local target")
        default_deny = (spec.get("enableDefaultDeny") or {}).get("ingress", True)
        rules = tuple(_cilium_rule(rule, namespace, f"{where}.ingress[{i}]")
                      for i, rule in enumerate(spec.get("ingress") or []))
        policies.append(Policy(CILIUM, namespace, name, compile_selector(spec.get("endpointSelector"), f"{where}.endpointSelector"),
                               "ingress" in spec and default_deny, rules))
    return policies


def _network_policy(obj: dict[str, Any]) -> list[Policy]:
    meta, spec = obj["metadata"], obj.get("spec") or {}
    namespace = meta.get("namespace", "")
    types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))
    rules = []
    for index, rule in enumerate(spec.get("ingress") or []):
        where = f"spec.ingress[{index}]"
        peers = []
        for peer_index, peer in enumerate(rule.get("from") or []):
            if peer.get("ipBlock"):
                raise PolicyError(f"{where}.from[{peer_index}].ipBlock: not enforced by the local target")
            here = f"{where}.from[{peer_index}]"
            pods = compile_selector(peer["podSelector"], f"{here}.podSelector") if "podSelector" in peer else None
            namespaces = compile_selector(peer["namespaceSelector"], f"{here}.namespaceSelector") \
                if "namespaceSelector" in peer else None
            peers.append(Peer(pods, None if namespaces is not None else namespace, namespaces))
        ports = (PortRule(tuple((_port(p.get("port", 0)), p.get("endPort"), p.get("protocol", "TCP"))
                                for p in rule["ports"])),) if rule.get("ports") else ()
        rules.append(IngressRule(tuple(peers) if rule.get("from") else None, ports))
    return [Policy(NETWORK_POLICY, namespace, meta["name"], compile_selector(spec.get("podSelector"),
                                                                             "spec.podSelector"),
                   "Ingress" in types, tuple(rules))]


def compile_policy(obj: dict[str, Any]) -> list[Policy]:
    """The ingress policies of one CiliumNetworkPolicy (one per ``spec``/``specs[]``) or NetworkPolicy.

    Raises PolicyError naming the field the local target cannot enforce or a regex that does not compile.
    """
    if obj["kind"] == CILIUM:
        return _cilium_policies(obj)
    if obj["kind"] == NETWORK_POLICY:
        return _network_policy(obj)
    raise PolicyError(f"{obj['kind']} is not a network policy kind ({CILIUM} or {NETWORK_POLICY})")


def decide(policies: Sequence[Policy], source: Identity, destination: Destination, method: str, path: str,
           host: str, headers: Mapping[str, str]) -> Verdict:
    """Cilium's ingress verdict for one request of `source` to `destination` (`policies`: those selecting it).

    `headers` is the request's (case-insensitive) header mapping, or one keyed in lower case.
    """
    names = tuple(sorted({p.ref for p in policies}))
    if not policies:
        return Verdict(True, "L3_L4", f"no policy selects {destination}: ingress is not enforced")
    if source.reserved == "host":
        return Verdict(True, "L3_L4", "the node itself: Cilium always lets the local host reach its pods in "
                                      "Kubernetes mode (allow-localhost), e.g. for the kubelet's probes", names)
    port_rules: list[tuple[Policy, PortRule | None]] = []
    for policy in policies:
        for rule in policy.rules:
            if rule.peers is not None and not any(peer.matches(source) for peer in rule.peers):
                continue
            if not rule.ports:
                port_rules.append((policy, None))
            port_rules += [(policy, ports) for ports in rule.ports if ports.covers(destination.port,
                                                                                 destination.port_names)]
    if not port_rules:
        return Verdict(False, "L3_L4", f"default deny: no ingress rule of {', '.join(names)} allows {source} "
                                       f"to port {destination.port}/TCP; see {RUNBOOK}", names)
    open_ports = [policy.ref for policy, ports in port_rules if ports is None or ports.http is None]
    if open_ports:
        return Verdict(True, "L3_L4", f"allowed at L3/L4 by {open_ports[0]}", names)
    for policy, ports in port_rules:
        for rule in ports.http or ():
            if rule.matches(method, path, host, headers):
                return Verdict(True, "L7", f"allowed by {policy.ref} http rule {rule.text}", names)
    allowed_by = sorted({policy.ref for policy, _ in port_rules})
    return Verdict(False, "L7", f"{method} {path} matches none of the http rules that {', '.join(allowed_by)} "
                                f"give {source} on port {destination.port}; see {RUNBOOK}", names)
