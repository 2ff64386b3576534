"""Who a caller is to Cilium: the labels of its pod and namespace, never anything the caller sends.

Cilium gives every pod a security identity computed from its labels (``k8s:`` source) plus
``io.kubernetes.pod.namespace`` and the namespace's own labels (``io.cilium.k8s.namespace.labels.*``),
and maps each pod IP to it (the ipcache). Traffic from the node itself is the reserved identity
``host``, from outside the cluster ``world``. Policies select identities by those labels
(https://docs.cilium.io/en/stable/security/policy/kubernetes/).

On the local target every caller is on loopback, so each registered caller gets its own address of
127.0.0.0/8 (`allocate_address`) and the gateway maps the peer address of a connection to it.
"""
from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Mapping

NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set on every Namespace by the API server
SERVICE_DOMAIN = ".svc.cluster.local"  # a Service's cluster DNS name is <service>.<namespace> + this
NODE_ADDRESS = "127.0.0.1"  # the local node itself: the gateway listens here and the reserved host calls from here
FIRST_CALLER, LAST_CALLER = ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.255.254")


def is_service_host(host: str) -> bool:
    """A Service's cluster name: ``<service>.<namespace>.svc.cluster.local`` or the two-label short form a pod's
    DNS search path completes (``<service>.<namespace>``); ingress hosts have a domain of their own."""
    return host.endswith(SERVICE_DOMAIN) or host.count(".") == 1


@dataclass(frozen=True)
class Identity:
    """A pod's security identity (namespace, pod labels, namespace labels), or a reserved one (`reserved`)."""

    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    reserved: str = ""  # "host" or "world"; then namespace and labels are empty

    @functools.cached_property
    def selector_labels(self) -> dict[str, str]:
        """The label set policies select on (keys without the ``k8s:`` source prefix); computed once per identity."""
        if self.reserved:
            return {f"reserved:{self.reserved}": ""}
        namespace_labels = {NAMESPACE_NAME_LABEL: self.namespace, **self.namespace_labels}
        return {**self.labels, NAMESPACE_LABEL: self.namespace,
                **{NAMESPACE_LABELS_PREFIX + key: value for key, value in namespace_labels.items()}}

    @functools.cached_property
    def pod_namespace_labels(self) -> dict[str, str]:
        """The namespace's labels as a NetworkPolicy namespaceSelector sees them."""
        return {NAMESPACE_NAME_LABEL: self.namespace, **self.namespace_labels}

    @functools.cached_property
    def _shown(self) -> str:
        if self.reserved:
            return f"reserved:{self.reserved}"
        shown = ",".join(f"{key}={value}" for key, value in sorted(self.labels.items()))
        return f"{self.namespace}/{shown or '(no labels)'}"

    def __str__(self) -> str:
        return self._shown


HOST = Identity(reserved="host")
WORLD = Identity(reserved="world")
# The pods the local gateway plays besides the caller's own: KServe's ingress (Istio's ingress gateway,
# the chart's default ingress class) and the KEDA HTTP add-on's interceptor, with their charts' labels.
INGRESS_GATEWAY = Identity("istio-system", {"app": "istio-ingressgateway", "istio": "ingressgateway"})
KEDA_INTERCEPTOR = Identity("keda", {"app.kubernetes.io/component": "interceptor",
                                     "app.kubernetes.io/part-of": "keda-add-ons-http"})


def allocate_address(taken: Iterable[str]) -> str:
    """The lowest free loopback address for a new caller (IPAM for the local node); 127.0.0.1 is the node's."""
    used = {ipaddress.ip_address(address) for address in taken}
    candidate = FIRST_CALLER
    while candidate in used:
        candidate += 1
        if candidate > LAST_CALLER:
            raise RuntimeError(f"no free caller address left in {FIRST_CALLER}-{LAST_CALLER}")
    return str(candidate)
