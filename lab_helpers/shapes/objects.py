"""Batch files where a Job can reach them: ``file://`` paths (the local target's stand-in bucket) or ``s3://``.

The scored file goes beside its input (``rows.csv`` -> ``rows.scored.csv``), so a batch and its
results stay together. S3 uses boto3 with the endpoint from ``AWS_ENDPOINT_URL`` when set (MinIO).
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

FILE_PREFIX = "file://"


def scored_uri(uri: str) -> str:
    """``.../rows.csv`` -> ``.../rows.scored.csv``: the results beside the input."""
    head, _, name = uri.rpartition("/")
    path = PurePosixPath(name)
    return f"{head}/{path.stem}.scored{path.suffix or '.csv'}"


def _s3(uri: str) -> tuple[object, str, str]:
    import boto3

    parts = urlsplit(uri)
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    return client, parts.netloc, parts.path.lstrip("/")


def read_bytes(uri: str) -> bytes:
    if uri.startswith(FILE_PREFIX):
        path = Path(uri.removeprefix(FILE_PREFIX))
        if not path.is_file():
            raise FileNotFoundError(f"batch input {uri} does not exist")
        return path.read_bytes()
    if uri.startswith("s3://"):
        client, bucket, key = _s3(uri)
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    raise ValueError(f"batch input {uri!r}: use a file:// or s3:// URI")


def write_bytes(uri: str, data: bytes) -> None:
    if uri.startswith(FILE_PREFIX):
        path = Path(uri.removeprefix(FILE_PREFIX))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    if uri.startswith("s3://"):
        client, bucket, key = _s3(uri)
        client.put_object(Bucket=bucket, Key=key, Body=data)
        return
    raise ValueError(f"batch output {uri!r}: use a file:// or s3:// URI")
