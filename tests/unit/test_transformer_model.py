"""The transformer as kserve runs it (preprocess -> predict -> postprocess), its predictor faked with
httpx.MockTransport: a predictor that is down, slow, failing or refusing the input becomes a clear status and JSON error, never a hang."""
import asyncio
import json

import httpx
import pytest
from kserve import PredictorConfig, context
from kserve.errors import InvalidInput
from kserve.inference_client import InferenceRESTClient, RESTConfig

from lab_helpers.runtime.transformer import FeatureTransformer, PredictorUnreachable, predictor_unreachable_handler
from lab_helpers.runtime.transformer_features import FeatureSpec

SPEC = FeatureSpec(("sepal_length", "petal_width"), ("setosa", "versicolor", "virginica"))
BODY = {"instances": [{"sepal_length_mm": 51, "petal_width_mm": 2}]}
HOST = "iris-predictor.lab"


def transformer(handler) -> FeatureTransformer:
    """The transformer with ModelServer's predictor config, its REST client's transport replaced by `handler`."""
    context.set_predictor_config(PredictorConfig(predictor_host=HOST, predictor_protocol="v2",
                                                 predictor_request_timeout_seconds=2))
    model = FeatureTransformer("iris", SPEC)
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=2))
    client._client = httpx.AsyncClient(transport=httpx.MockTransport(handler), timeout=2)
    model._http_client_instance = client
    return model


def run(model: FeatureTransformer, body=BODY):
    async def go():
        request = await model.preprocess(body)
        return await model.postprocess(await model.predict(request))

    return asyncio.run(go())


def mlserver(request: httpx.Request) -> httpx.Response:
    assert request.url == httpx.URL(f"http://{HOST}/v2/models/iris/infer")
    import orjson

    sent = orjson.loads(request.content)
    assert [i["name"] for i in sent["inputs"]] == ["sepal_length", "petal_width"]
    return httpx.Response(200, json={"model_name": "iris", "id": "1", "outputs": [
        {"name": "output-1", "shape": [1, 1], "datatype": "INT64", "data": [2]}]})


def test_the_predictor_is_called_over_v2_at_its_host_and_the_label_comes_back():
    assert run(transformer(mlserver)) == {"predictions": ["virginica"]}


def test_a_refused_connection_is_502_naming_the_predictor():
    def refuse(request):
        raise httpx.ConnectError("All connection attempts failed", request=request)

    with pytest.raises(PredictorUnreachable) as info:
        run(transformer(refuse))
    assert info.value.status == 502
    assert info.value.message == f"predictor {HOST} could not be reached: ConnectError: All connection attempts failed"


def test_a_predictor_that_does_not_answer_in_time_is_504():
    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(PredictorUnreachable) as info:
        run(transformer(slow))
    assert (info.value.status, info.value.message) == (504, f"predictor {HOST} did not answer within 2 s (ReadTimeout)")


def test_a_5xx_from_the_predictor_is_502_with_its_error():
    with pytest.raises(PredictorUnreachable) as info:
        run(transformer(lambda request: httpx.Response(503, json={"error": "no ready backend"})))
    assert (info.value.status, info.value.message) == (502, f"predictor {HOST} answered 503: no ready backend")


def test_a_4xx_from_the_predictor_is_the_callers_error():
    with pytest.raises(InvalidInput, match=f"predictor {HOST} rejected the request \\(400\\): bad column"):
        run(transformer(lambda request: httpx.Response(400, json={"error": "bad column"})))


def test_the_callers_error_is_json_with_the_status_and_the_runbook():
    response = asyncio.run(predictor_unreachable_handler(None, PredictorUnreachable(504, "predictor x timed out")))
    assert response.status_code == 504
    assert json.loads(response.body) == {"error": "predictor x timed out; see runbooks/service-not-ready.md"}


def test_a_v2_body_to_the_transformer_is_told_to_use_v1():
    from kserve.protocol.infer_type import InferRequest

    with pytest.raises(InvalidInput, match="speaks V1: POST /v1/models/iris:predict"):
        asyncio.run(FeatureTransformer("iris", SPEC).preprocess(InferRequest("iris", infer_inputs=[])))
