"""The `kubernetes` target: the lab's helper API on a real cluster (official `kubernetes` client).

`KubernetesLab` answers the same verbs as the local target; `run_doctor` checks a cluster has
what the series needs; `port_forward` reaches in-cluster services (MLflow, Prometheus, the
ingress gateway) from a loopback port.
"""
from .client import KubernetesLab
from .transport import load_api_client
from .doctor import run_doctor
from .portforward import ForwardedPort, port_forward

__all__ = ["ForwardedPort", "KubernetesLab", "load_api_client", "port_forward", "run_doctor"]
