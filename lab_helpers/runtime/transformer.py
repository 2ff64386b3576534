"""The lab's transformer image: a custom `kserve.Model` in front of a predictor, as KServe runs ``spec.transformer``.

    python -m lab_helpers.runtime.transformer --model_name iris-shapes \\
        --predictor_host iris-shapes-predictor.lab --predictor_protocol v2 --http_port 8080 \\
        --features sepal_length,sepal_width,petal_length,petal_width --labels setosa,versicolor,virginica

KServe appends ``--model_name``, ``--predictor_host`` and ``--http_port`` to the container's args;
``kserve.ModelServer`` then runs preprocess -> predict (a call to the predictor over the protocol
``--predictor_protocol`` names) -> postprocess for every request (`transformer_features` says what the
two steps do). The predictor host is a cluster-local Service name; on the local target the pod's
HTTP proxy (the gateway) resolves it the way cluster DNS would.

A predictor that cannot be reached is never a hang: the call has a deadline
(``--predictor_request_timeout_seconds``, 10 s here where kserve's default is 600 s) and no retries,
and its failure is answered as JSON naming the predictor (and the runbook): 502 when it refused the connection or
answered 5xx, 504 when it did not answer in time. A 4xx from the predictor is the caller's error
and passes through as 400 with the predictor's message.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest, InferResponse

from lab_helpers.runtime.pod import listen_port
from lab_helpers.runtime.server import MAX_BODY_BYTES
from lab_helpers.runtime.transformer_features import FeatureSpec, parse_spec

PREDICTOR_TIMEOUT_S = 10


class PredictorUnreachable(Exception):
    """The predictor did not answer usefully; `status` is what the transformer answers (502 or 504)."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


class FeatureTransformer(Model):
    """Raw measurements -> the predictor's feature columns; its class indices -> labels (V1 in and out)."""

    def __init__(self, name: str, spec: FeatureSpec):
        super().__init__(name)
        self.spec = spec
        self.ready = True  # nothing to load: the model lives in the predictor

    async def preprocess(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> InferRequest:
        if isinstance(payload, InferRequest):
            raise InvalidInput(f"the transformer of {self.name} speaks V1: POST /v1/models/{self.name}:predict "
                               f'with {{"instances": [{{{", ".join(f"{f!r}: ..." for f in self.spec.raw_fields)}}}]}}')
        return self.spec.infer_request(self.name, payload)

    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> Any:
        where = f"predictor {self.predictor_config.predictor_host}" if self.predictor_config else "predictor"
        try:
            return await super().predict(payload, headers, response_headers)
        except httpx.TimeoutException as exc:
            raise PredictorUnreachable(504, f"{where} did not answer within "
                                            f"{self.predictor_config.predictor_request_timeout_seconds} s "
                                            f"({type(exc).__name__})") from exc
        except httpx.HTTPStatusError as exc:
            said = _error_of(exc.response)
            if exc.response.status_code < 500:
                raise InvalidInput(f"{where} rejected the request ({exc.response.status_code}): {said}") from exc
            raise PredictorUnreachable(502, f"{where} answered {exc.response.status_code}: {said}") from exc
        except httpx.TransportError as exc:
            raise PredictorUnreachable(502, f"{where} could not be reached: {type(exc).__name__}: {exc}") from exc

    async def postprocess(self, result: Any, headers: dict[str, str] | None = None,
                          response_headers: dict[str, str] | None = None) -> dict[str, Any]:
        if not isinstance(result, InferResponse):
            raise InvalidInput(f"the predictor answered {type(result).__name__}, not a V2 inference response "
                               "(is --predictor_protocol v2?)")
        return {"predictions": self.spec.labels_of(result)}


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or "(empty body)"
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)


RUNBOOK = "runbooks/service-not-ready.md"


async def predictor_unreachable_handler(request: Any, exc: PredictorUnreachable) -> Any:
    """The JSON error a caller gets, pointing at the runbook for a component that is not serving."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": f"{exc.message}; see {RUNBOOK}"}, status_code=exc.status)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers.runtime.transformer",
                                     description="Serve a KServe transformer in front of a predictor.")
    parser.add_argument("--model_name", required=True, help="the InferenceService name (KServe appends it)")
    parser.add_argument("--predictor_host", required=True,
                        help="host[:port] of the predictor (KServe appends <isvc>-predictor.<namespace>)")
    parser.add_argument("--predictor_protocol", choices=("v1", "v2"), default="v2")
    parser.add_argument("--predictor_request_timeout_seconds", type=int, default=PREDICTOR_TIMEOUT_S)
    parser.add_argument("--http_port", type=int, default=8080)
    parser.add_argument("--features", required=True, help="the model's feature names, in signature order")
    parser.add_argument("--labels", required=True, help="the class labels, by class index")
    args = parser.parse_args(argv)
    args.http_port = listen_port(args.http_port)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve.model_server parses sys.argv when imported
    from kserve import PredictorConfig
    from kserve.model_server import app

    from lab_helpers.runtime.server import serve

    config = PredictorConfig(predictor_host=args.predictor_host, predictor_protocol=args.predictor_protocol,
                             predictor_request_timeout_seconds=args.predictor_request_timeout_seconds,
                             predictor_request_retries=0)
    app.add_exception_handler(PredictorUnreachable, predictor_unreachable_handler)
    serve(FeatureTransformer(args.model_name, parse_spec(args.features, args.labels)), args.http_port,
          MAX_BODY_BYTES, predictor_config=config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
