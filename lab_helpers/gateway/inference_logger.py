"""KServe's inference logger on the local target: the gateway plays the agent sidecar.

On a cluster an InferenceService with ``spec.predictor.logger`` gets an agent container in its pod
(port 9081, in front of the model server). The agent queues a CloudEvent for the request and, when
the model answered 200, one for the response, and worker goroutines POST them to the logger URL in
CloudEvents 1.0 *binary* mode: the body is the exact protocol payload, the attributes are ``Ce-*``
headers, and both events carry the same ``Ce-Id`` (the caller's ``Ce-Id`` header, else a new UUID),
the key a drift pipeline joins them on (https://github.com/kserve/kserve/blob/master/pkg/logger/handler.go,
worker.go). The KServe controller writes the logger spec into pod annotations and the agent injector
turns them, with the pod's labels and name, into the agent's flags (pkg/webhook/admission/pod/
agent_injector.go); `agent_config` reads the same annotations and labels here.

Locally every request to a pod passes the gateway, so a gateway observer sees what the agent sees.
It shapes the events (`cloud_events`) and puts them on a bounded queue that a few asyncio workers
drain (`InferenceLogger`): the request is answered before its events are sent, and a slow or dead
sink costs queued events, never inference time.

Differs from the agent: when the queue (100, as the agent's) is full the agent's handler blocks the
request until there is room; here the event is dropped and counted, so inference never waits for
the sink. A response streamed through unbuffered (no Content-Length, or above the gateway's body
cap) has no body to log, so its event is dropped and counted too. ``metadataAnnotations``,
``storage`` (blob sinks) and TLS to the sink are not implemented.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge
from yarl import URL

from .proxy import Exchange

log = logging.getLogger(__name__)

_INTERNAL = "internal.serving.kserve.io"
LOGGER_ANNOTATION = f"{_INTERNAL}/logger"
SINK_URL_ANNOTATION = f"{_INTERNAL}/logger-sink-url"
MODE_ANNOTATION = f"{_INTERNAL}/logger-mode"
METADATA_HEADERS_ANNOTATION = f"{_INTERNAL}/logger-metadata-headers"
DEFAULT_SINK_URL = "http://default-broker"  # KServe's inferenceservice-config `logger.defaultUrl`

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
MODES = ("all", "request", "response")
QUEUE_SIZE = 100  # the agent's LoggerWorkerQueueSize
WORKERS = 5       # the agent's --workers default
SEND_TIMEOUT_S = 5.0
CLUSTER_DOMAIN = "cluster.local"


def logger_annotations(logger: dict[str, Any] | None) -> dict[str, str]:
    """The pod annotations KServe's controller derives from a component's ``logger`` (addLoggerAnnotations)."""
    if not logger:
        return {}
    annotations = {LOGGER_ANNOTATION: "true", MODE_ANNOTATION: logger.get("mode", "all")}
    if logger.get("url"):
        annotations[SINK_URL_ANNOTATION] = logger["url"]
    if logger.get("metadataHeaders") is not None:
        annotations[METADATA_HEADERS_ANNOTATION] = ",".join(logger["metadataHeaders"])
    return annotations


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """What the injector passes the agent for one pod (its --log-url, --source-uri, ... flags)."""

    url: str
    mode: str
    inference_service: str
    namespace: str
    component: str
    endpoint: str
    source: str
    metadata_headers: tuple[str, ...] = ()


def agent_config(pod: dict[str, Any]) -> AgentConfig | None:
    """The agent's configuration for `pod`, or None when its template asks for no logger."""
    meta = pod["metadata"]
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    if LOGGER_ANNOTATION not in annotations:
        return None
    headers = annotations.get(METADATA_HEADERS_ANNOTATION, "")
    return AgentConfig(url=annotations.get(SINK_URL_ANNOTATION, DEFAULT_SINK_URL),
                       mode=annotations.get(MODE_ANNOTATION, "all"),
                       inference_service=labels.get("serving.kserve.io/inferenceservice", ""),
                       namespace=meta.get("namespace", "default"), component=labels.get("component", ""),
                       endpoint=labels.get("endpoint", ""), source=meta["name"],
                       metadata_headers=tuple(h for h in headers.split(",") if h))


@functools.lru_cache(maxsize=1024)
def canonical_header(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey (``x-request-id`` -> ``X-Request-Id``): the agent matches
    ``metadataHeaders`` against header names in this form, exactly."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _timestamp(seconds: float) -> str:
    """An RFC 3339 UTC timestamp, as the CloudEvents SDK writes ``ce-time``."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """One event ready to POST in binary mode: headers and the raw payload."""

    url: str
    headers: dict[str, str]
    body: bytes


def cloud_events(config: AgentConfig, exchange: Exchange, answered_at: float) -> list[CloudEvent]:
    """The request and response events the agent would send for `exchange` (response only on 200)."""
    request_headers = exchange.request_headers
    metadata: dict[str, list[str]] = {}
    for name, value in request_headers.items() if config.metadata_headers else ():
        canonical = canonical_header(name)
        if canonical in config.metadata_headers:
            metadata.setdefault(canonical, []).append(value)
    common = {"Ce-Id": request_headers.get("Ce-Id") or str(uuid.uuid4()), "Ce-Specversion": "1.0",
              "Ce-Source": config.source, "Ce-Inferenceservicename": config.inference_service,
              "Ce-Namespace": config.namespace, "Ce-Component": config.component, "Ce-Endpoint": config.endpoint,
              "Ce-Metadata": json.dumps(dict(sorted(metadata.items())), separators=(",", ":"))}
    content_type = request_headers.get("Content-Type")
    if content_type:
        common["Content-Type"] = content_type
    recorded = _timestamp(time.time())
    events = []
    if config.mode in ("all", "request"):
        events.append(CloudEvent(config.url, {**common, "Ce-Type": REQUEST_TYPE, "Ce-Recordedtime": recorded,
                                              "Ce-Time": _timestamp(answered_at - exchange.duration_s)},
                                 exchange.request_body))
    if config.mode in ("all", "response") and exchange.status == 200 and exchange.response_body is not None:
        events.append(CloudEvent(config.url, {**common, "Ce-Type": RESPONSE_TYPE, "Ce-Recordedtime": recorded,
                                              "Ce-Time": _timestamp(answered_at)}, exchange.response_body))
    return events


def cluster_host(host: str, namespace: str) -> str | None:
    """A Service's full cluster DNS name as a pod in `namespace` resolves `host` (search path
    ``<ns>.svc.cluster.local``, ``svc.cluster.local``, ``cluster.local``), or None for another host."""
    parts = host.split(".")
    if host.endswith(f".svc.{CLUSTER_DOMAIN}"):
        return host
    if host.endswith(".svc"):
        return f"{host}.{CLUSTER_DOMAIN}"
    if len(parts) == 2:
        return f"{host}.svc.{CLUSTER_DOMAIN}"
    if len(parts) == 1 and host not in ("localhost",):
        return f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}"
    return None


class InferenceLogger:
    """The agents of every logged pod, keyed by backend URL; attach `observe` to the gateway's observers.

    `gateway_url` is where cluster DNS names are served (the gateway itself): a sink named
    ``drift-receiver.drift`` is reached through it with that Host, as kube-proxy would route it.
    """

    def __init__(self, registry: CollectorRegistry, gateway_url: Callable[[], str | None], *,
                 queue_size: int = QUEUE_SIZE, workers: int = WORKERS, timeout_s: float = SEND_TIMEOUT_S):
        self.gateway_url, self.workers, self.timeout_s = gateway_url, workers, timeout_s
        self.queue: asyncio.Queue[tuple[AgentConfig, CloudEvent]] = asyncio.Queue(maxsize=queue_size)
        self._agents: dict[str, AgentConfig] = {}
        self._tasks: list[asyncio.Task] = []
        self._session: aiohttp.ClientSession | None = None
        self._dropped_in_burst = 0
        self._failing: dict[str, int] = {}  # sink URL -> events lost since it stopped answering
        labels = ("namespace", "inferenceservice")
        self.sent = Counter("inference_logger_events_sent", "CloudEvents the sink accepted", (*labels, "type"),
                            registry=registry)
        self.dropped = Counter("inference_logger_events_dropped", "CloudEvents never sent: queue full or no body",
                               (*labels, "reason"), registry=registry)
        self.failed = Counter("inference_logger_send_failures", "CloudEvents the sink refused or never received",
                              (*labels, "reason"), registry=registry)
        self.depth = Gauge("inference_logger_queue_depth", "CloudEvents waiting to be sent", registry=registry)
        self.depth.set_function(self.queue.qsize)

    def set_agents(self, agents: dict[str, AgentConfig]) -> None:
        """Replace the logged backends: {backend URL: its pod's agent configuration}."""
        self._agents = agents

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._tasks = [asyncio.create_task(self._work(), name=f"inference-logger-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def observe(self, exchange: Exchange) -> None:
        config = self._agents.get(exchange.backend.url) if exchange.backend is not None else None
        if config is None:
            return
        events = cloud_events(config, exchange, time.time())
        if exchange.status == 200 and exchange.response_body is None and config.mode != "request":
            self.dropped.labels(config.namespace, config.inference_service, "unbuffered_response").inc()
        for event in events:
            try:
                self.queue.put_nowait((config, event))
            except asyncio.QueueFull:
                self._drop(config)
            else:
                self._end_burst()

    def _drop(self, config: AgentConfig) -> None:
        self.dropped.labels(config.namespace, config.inference_service, "queue_full").inc()
        if not self._dropped_in_burst:
            log.warning("inference logger: queue full (%d events), dropping events until the sink catches up",
                        self.queue.maxsize)
        self._dropped_in_burst += 1

    def _end_burst(self) -> None:
        if self._dropped_in_burst:
            log.warning("inference logger: queue has room again, %d events dropped", self._dropped_in_burst)
            self._dropped_in_burst = 0

    def _target(self, config: AgentConfig, url: str) -> tuple[str, dict[str, str]]:
        """Where to POST and the extra headers: through the gateway for a cluster DNS name."""
        parsed = URL(url)
        host = cluster_host(parsed.host or "", config.namespace)
        gateway = self.gateway_url()
        if host is None or gateway is None:
            return url, {}
        return f"{gateway.rstrip('/')}{parsed.raw_path_qs or '/'}", {"Host": host}

    async def _work(self) -> None:
        while True:
            config, event = await self.queue.get()
            try:
                await self._send(config, event)
            finally:
                self.queue.task_done()

    async def _send(self, config: AgentConfig, event: CloudEvent) -> None:
        assert self._session is not None, "InferenceLogger.start() was not awaited"
        url, extra = self._target(config, event.url)
        labels = (config.namespace, config.inference_service)
        try:
            async with self._session.post(url, data=event.body, headers={**event.headers, **extra}) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            self._failure(event.url, labels, "unreachable", f"{type(error).__name__}: {error}")
            return
        if 200 <= status < 300:
            self.sent.labels(*labels, event.headers["Ce-Type"].rsplit(".", 1)[-1]).inc()
            lost = self._failing.pop(event.url, None)
            if lost:
                log.warning("inference logger: sink %s answers again (%d events lost meanwhile)", event.url, lost)
        else:
            self._failure(event.url, labels, "rejected", f"HTTP {status}")

    def _failure(self, sink: str, labels: tuple[str, str], reason: str, detail: str) -> None:
        self.failed.labels(*labels, reason).inc()
        if sink not in self._failing:
            log.warning("inference logger: sink %s %s (%s): events are lost until it answers; "
                        "see runbooks/inference-logger-sink.md", sink, "is unreachable" if reason == "unreachable"
                        else "refuses events", detail)
        self._failing[sink] = self._failing.get(sink, 0) + 1
