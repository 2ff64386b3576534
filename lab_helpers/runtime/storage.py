"""The storage-initializer step of a local pod: copy a model from its storageUri into the model dir.

Mirrors KServe's storage initializer (kserve/kserve python/storage/kserve_storage/kserve_storage.py):
the same handling of local paths, http(s) files and archives, s3 prefixes, and the same failure
messages, so a broken storageUri fails with the same words on the local target as on a cluster.
Run as its own process, like the init container:

    python -m lab_helpers.runtime.storage SRC DEST

exits 1 with the message as the last line on stderr (the pod's lastFailureInfo).
"""
from __future__ import annotations

import argparse
import mimetypes
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from lab_helpers.errors import LabError
from lab_helpers.runtime.pod import pod_path

LOCAL_PREFIX = "file://"
SUPPORTED = "'file://', 'http(s)://', 's3://' (with an endpoint configured) and local paths"
ARCHIVE_MIMETYPES = ("application/x-tar", "application/zip")
# Content-Type values KServe accepts for each kind of download (_download_from_uri).
ZIP_CONTENT_TYPES = ("application/x-zip-compressed", "application/zip", "application/zip-compressed")
TAR_CONTENT_TYPES = ("application/x-tar", "application/x-gtar", "application/x-gzip", "application/gzip")
FILE_CONTENT_TYPE = "application/octet-stream"
HTTP_TIMEOUT_S = 30.0


class StorageError(LabError):
    """The model could not be copied into the model dir; the message says which URI and why."""


def initialize(storage_uri: str, dest: Path) -> list[Path]:
    """Copy the model at `storage_uri` into `dest` (created if missing); return the files placed there.

    A single archive (.tar, .tar.gz, .tgz, .zip) is extracted in place, like KServe does.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    scheme = urlsplit(storage_uri).scheme
    if storage_uri.startswith(LOCAL_PREFIX) or not scheme:
        _copy_local(storage_uri, dest)
    elif scheme in ("http", "https"):
        _download_http(storage_uri, dest)
    elif scheme == "s3":
        _download_s3(storage_uri, dest)
    else:
        raise StorageError(
            f"Cannot recognize storage type for {storage_uri}: {SUPPORTED} are the storage types "
            "the local target's storage initializer supports.")
    return sorted(path for path in dest.rglob("*") if path.is_file())


def _copy_local(uri: str, dest: Path) -> None:
    source = Path(uri.removeprefix(LOCAL_PREFIX))
    if not source.exists():
        raise StorageError(f"Local path {uri} does not exist.")
    entries = sorted(source.iterdir()) if source.is_dir() else [source]
    if not entries:
        raise StorageError(f"Failed to fetch model. No model found in {uri}.")
    for entry in entries:
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, dest / entry.name)
    if len(entries) == 1:
        _unpack_if_archive(dest / entries[0].name, dest)


def _download_http(uri: str, dest: Path) -> None:
    import httpx

    filename = os.path.basename(urlsplit(uri).path)
    if not filename:
        raise StorageError(f"No filename contained in URI: {uri}")
    mimetype, _ = mimetypes.guess_type(filename)
    target = dest / filename
    try:
        with httpx.stream("GET", uri, timeout=HTTP_TIMEOUT_S, follow_redirects=True) as response:
            if response.status_code != 200:
                raise StorageError(f"URI: {uri} returned a {response.status_code} response code.")
            _check_content_type(uri, mimetype, response.headers.get("content-type", ""))
            with open(target, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
    except (httpx.ConnectError, httpx.TimeoutException) as exc:  # KServe's wording (storage_errors.py)
        raise StorageError(f"Failed to connect to HTTP endpoint '{urlsplit(uri).hostname}'. "
                           f"({type(exc).__name__}: {exc})") from exc
    except httpx.HTTPError as exc:
        raise StorageError(f"URI: {uri} could not be downloaded: {type(exc).__name__}: {exc}") from exc
    _unpack_if_archive(target, dest)


def _check_content_type(uri: str, mimetype: str | None, content_type: str) -> None:
    """KServe refuses a download whose Content-Type does not fit the file's extension."""
    if mimetype == "application/zip":
        expected = ZIP_CONTENT_TYPES
    elif mimetype == "application/x-tar":
        expected = TAR_CONTENT_TYPES
    else:
        expected = (FILE_CONTENT_TYPE,)
    if not content_type.startswith(expected):
        raise StorageError(f"URI: {uri} did not respond with any of following 'Content-Type': "
                           f"{', '.join(expected)} (got {content_type or 'none'!r}).")


def _s3_endpoint() -> str | None:
    """The S3 endpoint from AWS_ENDPOINT_URL, else S3_ENDPOINT (host[:port], https unless S3_USE_HTTPS=0)."""
    if endpoint := os.environ.get("AWS_ENDPOINT_URL"):
        return endpoint
    if endpoint := os.environ.get("S3_ENDPOINT"):
        if "://" in endpoint:
            return endpoint
        scheme = "http" if os.environ.get("S3_USE_HTTPS", "1") == "0" else "https"
        return f"{scheme}://{endpoint}"
    return None


def _download_s3(uri: str, dest: Path) -> None:
    endpoint = _s3_endpoint()
    if endpoint is None:
        raise StorageError(f"Cannot fetch {uri}: the local target reaches S3 only through an endpoint; "
                           "set AWS_ENDPOINT_URL (or S3_ENDPOINT) to the S3 server's URL.")
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise StorageError(f"Cannot fetch {uri}: boto3 is not installed, and s3:// storage needs it "
                           "(pip install boto3).") from None
    parts = urlsplit(uri)
    bucket, prefix = parts.netloc, parts.path.lstrip("/")
    try:
        client = boto3.client("s3", endpoint_url=endpoint, config=Config(
            connect_timeout=HTTP_TIMEOUT_S, read_timeout=HTTP_TIMEOUT_S, retries={"max_attempts": 3}))
        keys = [obj["Key"]
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for obj in page.get("Contents", [])
                if not obj["Key"].endswith("/") and obj["Size"] > 0]
        # A prefix "models/iris" names the object itself or the folder "models/iris/", never "models/iris2/...".
        keys = [key for key in keys if key == prefix or not prefix or prefix.endswith("/")
                or key.startswith(prefix + "/")]
        if not keys:
            raise StorageError(f"Failed to fetch model. No model found in {uri}.")
        targets = [dest / (os.path.basename(key) if key == prefix else key.removeprefix(prefix).lstrip("/"))
                   for key in keys]
        for key, target in zip(keys, targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(target))
    except (BotoCoreError, ClientError) as exc:
        raise StorageError(f"Cannot fetch {uri} from {endpoint}: {exc}") from exc
    if len(targets) == 1:
        _unpack_if_archive(targets[0], dest)


def _unpack_if_archive(path: Path, dest: Path) -> None:
    """Extract a .tar[.gz]/.tgz/.zip into `dest` and delete it, as KServe's _unpack_archive_file does."""
    mimetype, _ = mimetypes.guess_type(path.name)
    if mimetype not in ARCHIVE_MIMETYPES:
        return
    try:
        if mimetype == "application/x-tar":
            with tarfile.open(path, "r:*") as archive:
                archive.extractall(dest, filter="data")
        else:
            with zipfile.ZipFile(path) as archive:
                archive.extractall(dest)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise StorageError(f"Failed to unpack archive file {path.name}. The file format is not valid.") from exc
    path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_helpers.runtime.storage",
                                     description="Copy a model from its storageUri into the model dir.")
    parser.add_argument("src", help="storageUri: file://, a local path, http(s):// or s3://")
    parser.add_argument("dest", type=Path, help="the pod's model dir (like /mnt/models)")
    args = parser.parse_args(argv)
    dest = pod_path(args.dest)
    try:
        files = initialize(args.src, dest)
    except (StorageError, OSError) as exc:
        print(str(exc).replace("\n", " "), file=sys.stderr)
        return 1
    print(f"Copied {len(files)} file(s) from {args.src} to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
