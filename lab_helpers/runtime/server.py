"""The runtime process of a local pod: load one model, serve it with `kserve.ModelServer`.

    python -m lab_helpers.runtime.server --model-name iris --model-dir DIR \\
        --model-format mlflow|sklearn --http-port PORT [--protocol v1|v2]

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
    parser.add_argument("--model-name", required=True, help="the name in /v2/models/NAME (the ISVC name)")
    parser.add_argument("--model-dir", required=True, type=Path, help="the pod's model dir (like /mnt/models)")
    parser.add_argument("--model-format", required=True, choices=sorted(PROTOCOLS))
    parser.add_argument("--http-port", required=True, type=int)
    parser.add_argument("--protocol", choices=("v1", "v2"), help="the ISVC protocolVersion (checked, see PROTOCOLS)")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                        help="larger request bodies get 413 (default 10 MiB)")
    args = parser.parse_args(argv)
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


async def _request_validation_error(request: Any, exc: Any) -> Any:
    """FastAPI's 422 carries {"detail": [...]}; the OIP error shape is {"error": "..."}."""
    from starlette.responses import JSONResponse

    problems = "; ".join(f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors())
    return JSONResponse({"error": f"invalid request: {problems}"}, status_code=422)


def build_model(args: argparse.Namespace) -> Any:
    from lab_helpers.runtime.models import MLflowModel, SKLearnModel

    model_class = {"sklearn": SKLearnModel, "mlflow": MLflowModel}[args.model_format]
    return model_class(args.model_name, args.model_dir)


def serve(model: Any, http_port: int, max_body_bytes: int) -> None:
    """Run kserve.ModelServer for the loaded `model` until SIGTERM/SIGINT."""
    from fastapi.exceptions import RequestValidationError
    from kserve import ModelServer
    from kserve.model_server import app

    class LoopbackModelServer(ModelServer):
        # kserve 0.21's RESTServer hard-codes uvicorn host "0.0.0.0" (protocol/rest/server.py);
        # ModelServer.start() builds it, then calls setup_event_loop() before serving: rebind there.
        def setup_event_loop(self) -> None:
            self._rest_server.config.host = LOOPBACK
            super().setup_event_loop()

    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    server = LoopbackModelServer(http_port=http_port, enable_grpc=False, workers=1, enable_latency_logging=False)
    server.start([model])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # kserve.model_server parses sys.argv when imported; keep the lab's flags away from that parser.
    sys.argv = sys.argv[:1]
    model = build_model(args)
    try:
        model.load()
    except Exception as exc:  # noqa: BLE001 - any load failure is a ModelLoadFailed, reported in one line
        cause = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"failed to load {args.model_format} model {args.model_name!r} from {args.model_dir}: {cause}",
              file=sys.stderr)
        return 1
    serve(model, args.http_port, args.max_body_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
