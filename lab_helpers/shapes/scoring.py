"""The client call every inference shape makes: raw records in, labels out, over KServe's V1 protocol."""
from __future__ import annotations

from typing import Any

import httpx


class ScoringError(RuntimeError):
    """The service answered something other than labels; the message has its status and error."""


async def predict_labels(client: httpx.AsyncClient, url: str, model: str, records: list[dict[str, Any]],
                         host: str | None = None) -> list[str]:
    """POST ``{"instances": records}`` to ``<url>/v1/models/<model>:predict`` (with a Host header when routed
    through an ingress) and return one label per record."""
    headers = {"Host": host} if host else {}
    response = await client.post(f"{url}/v1/models/{model}:predict", json={"instances": records}, headers=headers)
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if not isinstance(body, dict):
        body = {"error": body}
    if response.status_code != 200:
        raise ScoringError(f"{model} at {url} answered {response.status_code}: {body.get('error', body)}")
    labels = body.get("predictions")
    if not isinstance(labels, list) or len(labels) != len(records):
        raise ScoringError(f"{model} at {url} answered {len(labels or [])} predictions for {len(records)} records")
    return labels
