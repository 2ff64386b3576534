"""The runtime process of a local pod: load one model, serve it with `kserve.ModelServer`.

    python -m lab_helpers.runtime.server --model-format mlflow|sklearn \\
        --model_name iris --model_dir /mnt/models --http_port 8080 [--protocol v1|v2]

`--model_name`, `--model_dir` and `--http_port` are the flags KServe's ServingRuntimes pass to
their containers (the dashed spellings work too); the local image adds `--model-format` as its
entrypoint would. Inside a local pod, the model dir and port resolve through `runtime.pod`.

The KServe Python data plane is used as it ships (V1 + V2 REST routes, /metrics with the
request_*_seconds histograms); the lab adds only what a pod on a shared laptop needs:
loopback binding, a request-body cap (413), and 4xx JSON errors where kserve 0.21 would answer
a malformed request with FastAPI's non-OIP 422 body. gRPC is off and one worker serves.
A model that fails to load exits 1 with one line on stderr naming the model dir and the cause
(the kubelet turns it into ModelLoadFailed). Ready = GET /v2/health/ready and
GET /v2/models/NAME/ready both 200.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

from lab_helpers.runtime.pod import listen_port, pod_path

LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 10 * 2**20
# What each format's runtime speaks: kserve-sklearnserver serves V1 and V2 routes whatever the
# ISVC's protocolVersion; kserve-mlserver (the mlflow runtime) speaks V2 only.
PROTOCOLS = {"sklearn": ("v1", "v2"), "mlflow": ("v2",)}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers.runtime.server",
                                     description="Serve one model with kserve.ModelServer on 127.0.0.1.")
    parser.add_argument("--model-name", "--model_name", dest="model_name", required=True,
                        help="the name in /v2/models/NAME (the ISVC name)")
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir", required=True, type=Path,
                        help="the pod's model dir (like /mnt/models)")
    parser.add_argument("--model-format", required=True, choices=sorted(PROTOCOLS))
    parser.add_argument("--http-port", "--http_port", dest="http_port", required=True, type=int,
                        help="the container port (a local pod maps it to its host port)")
    parser.add_argument("--protocol", choices=("v1", "v2"), help="the ISVC protocolVersion (checked, see PROTOCOLS)")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                        help="larger request bodies get 413 (default 10 MiB)")
    args = parser.parse_args(argv)
    args.model_dir = pod_path(args.model_dir)
    args.http_port = listen_port(args.http_port)
    if args.protocol and args.protocol not in PROTOCOLS[args.model_format]:
        parser.error(f"--protocol {args.protocol}: the {args.model_format} runtime speaks only "
                     f"{' and '.join(PROTOCOLS[args.model_format])} (kserve-mlserver is V2-only)")
    return args


class BodySizeLimit:
    """ASGI middleware: answer 413 with an OIP error body when a request body exceeds `max_bytes`.

    Checks Content-Length up front; a chunked body is buffered up to the cap, then replayed.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if int(declared) > self.max_bytes:
                return await self._reject(send)
            return await self.app(scope, receive, send)
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._reject(send)
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        from starlette.responses import JSONResponse

        response = JSONResponse({"error": f"request body larger than {self.max_bytes} bytes"}, status_code=413)
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


class OmitNullFields:
    """ASGI middleware: drop null-valued keys from the JSON bodies of /v2 responses.

    The OIP schema types optional fields (model_version, parameters, versions) as string/object
    without `nullable`; kserve 0.21 serializes them as null when unset, which strict clients reject.
    Only object keys are dropped: a null inside tensor `data` (a NaN) stays.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2"):
            return await self.app(scope, receive, send)
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewrite(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if dict(message["headers"]).get(b"content-type", b"").startswith(b"application/json"):
                    held["start"] = message
                    return
            elif message["type"] == "http.response.body" and "start" in held:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                import orjson

                body = orjson.dumps(_without_nulls(orjson.loads(b"".join(chunks))))
                headers = [(k, v) for k, v in held["start"]["headers"] if k != b"content-length"]
                await send({**held["start"], "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                message = {"type": "http.response.body", "body": body}
            await send(message)

        await self.app(scope, receive, rewrite)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_without_nulls(item) for item in value]
    return value


async def _http_error(request: Any, exc: Any) -> Any:
    """404/405/400 raised by routing or body parsing, in the OIP error shape instead of {"detail": ...}."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _request_validation_error(request: Any, exc: Any) -> Any:
    """A body that does not fit the V2 request model: 422 naming each bad field, in the OIP error shape."""
    from starlette.responses import JSONResponse

    problems = []
    for err in exc.errors():
        # kserve types the V2 body as InferenceRequest | bytes; the bytes branch's complaint is noise.
        location = [str(part) for part in err["loc"] if part not in ("body", "InferenceRequest")]
        if location[:1] == ["bytes"]:
            continue
        detail = err.get("ctx", {}).get("error")
        problems.append(f"{'.'.join(location) or 'body'}: {err['msg']}" + (f" ({detail})" if detail else ""))
    return JSONResponse({"error": f"invalid inference request: {'; '.join(problems)}"}, status_code=422)


def preimport_skops(model_dir: Path) -> None:
    """Import skops.io first when the MLflow model is skops-serialized (mlflow 3's sklearn default).

    skops.io lists its trusted types at import by scanning every loaded module once per numpy/scipy
    ufunc (skops/io/_utils.py `whichmodule`); imported before kserve and mlflow it scans ~2k modules
    instead of ~3.5k, which saves about a second of CPU on the cold start.
    """
    import yaml

    try:
        mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
        serialization = mlmodel["flavors"]["sklearn"]["serialization_format"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return  # not an skops model, or a broken one that load() will report
    if serialization == "skops":
        import skops.io  # noqa: F401


def build_model(args: argparse.Namespace) -> Any:
    """The runtime's model object, not loaded yet (importing it imports kserve)."""
    from lab_helpers.runtime.models import MLflowModel, SKLearnModel

    model_class = {"sklearn": SKLearnModel, "mlflow": MLflowModel}[args.model_format]
    return model_class(args.model_name, args.model_dir)


def serve(model: Any, http_port: int, max_body_bytes: int, predictor_config: Any = None) -> None:
    """Run kserve.ModelServer for the loaded `model` until SIGTERM/SIGINT (a transformer passes the
    `kserve.PredictorConfig` of its predictor)."""
    from fastapi.exceptions import RequestValidationError
    from kserve import ModelServer
    from kserve.model_server import app
    from starlette.exceptions import HTTPException

    class LoopbackModelServer(ModelServer):
        # kserve 0.21's RESTServer hard-codes uvicorn host "0.0.0.0" (protocol/rest/server.py);
        # ModelServer.start() builds it, then calls setup_event_loop() before serving: rebind there.
        def setup_event_loop(self) -> None:
            self._rest_server.config.host = LOOPBACK
            super().setup_event_loop()

    app.add_middleware(OmitNullFields)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    server = LoopbackModelServer(http_port=http_port, enable_grpc=False, workers=1, enable_latency_logging=False,
                                 predictor_config=predictor_config)
    server.start([model])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # kserve.model_server parses sys.argv when imported; keep the lab's flags away from that parser.
    sys.argv = sys.argv[:1]
    if args.model_format == "mlflow":
        preimport_skops(args.model_dir)
    model = build_model(args)
    from lab_helpers.runtime.models import ModelLoadError

    try:
        model.load()
    except Exception as exc:  # noqa: BLE001 - any load failure is a ModelLoadFailed, reported in one line
        cause = " ".join((str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}").split())
        print(f"failed to load {args.model_format} model {args.model_name!r} from {args.model_dir}: {cause}",
              file=sys.stderr)
        return 1
    try:
        serve(model, args.http_port, args.max_body_bytes)
    except SystemExit as exc:  # uvicorn exits 3 when it cannot bind the port
        if exc.code:
            print(f"model {args.model_name!r} loaded, but the server could not start on {LOOPBACK}:{args.http_port} "
                  f"(exit {exc.code}; the uvicorn error is above)", file=sys.stderr)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
