"""The storage-initializer step: schemes, archives, and KServe's failure messages."""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from lab_helpers.paths import REPO_ROOT
from lab_helpers.runtime.storage import StorageError, initialize, main

MODEL_FILES = {"MLmodel": "flavors: {}\n", "model.skops": "weights", "sub/extra.txt": "nested"}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def tree(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): path.read_text() for path in root.rglob("*") if path.is_file()}


def tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "src", MODEL_FILES)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "mnt" / "models"


def test_file_uri_copies_the_directory(source: Path, dest: Path) -> None:
    files = initialize(f"file://{source}", dest)
    assert tree(dest) == MODEL_FILES
    assert files == sorted(dest / name for name in MODEL_FILES)
    assert tree(source) == MODEL_FILES  # a copy, the source is untouched


def test_plain_local_path_copies_the_directory(source: Path, dest: Path) -> None:
    initialize(str(source), dest)
    assert tree(dest) == MODEL_FILES


def test_local_single_file_is_copied(source: Path, dest: Path) -> None:
    assert initialize(str(source / "model.skops"), dest) == [dest / "model.skops"]


def test_local_archive_is_extracted(tmp_path: Path, dest: Path) -> None:
    (tmp_path / "model.tar.gz").write_bytes(tar_gz(MODEL_FILES))
    initialize(f"file://{tmp_path / 'model.tar.gz'}", dest)
    assert tree(dest) == MODEL_FILES


def test_missing_local_path_fails_like_kserve(dest: Path) -> None:
    with pytest.raises(StorageError, match=r"^Local path /no/such/model does not exist\.$"):
        initialize("/no/such/model", dest)
    with pytest.raises(StorageError, match=r"^Local path file:///no/such/model does not exist\.$"):
        initialize("file:///no/such/model", dest)


def test_empty_local_directory_has_no_model(tmp_path: Path, dest: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(StorageError, match="Failed to fetch model. No model found in"):
        initialize(str(tmp_path / "empty"), dest)


@pytest.mark.parametrize("uri", ["gs://bucket/model", "hf://org/model", "pvc://claim/model"])
def test_unsupported_scheme_lists_the_supported_ones(uri: str, dest: Path) -> None:
    with pytest.raises(StorageError) as error:
        initialize(uri, dest)
    message = str(error.value)
    assert message.startswith(f"Cannot recognize storage type for {uri}")
    assert all(scheme in message for scheme in ("file://", "http(s)://", "s3://", "local paths"))


def test_corrupt_archive_is_reported(tmp_path: Path, dest: Path) -> None:
    (tmp_path / "model.zip").write_bytes(b"not a zip")
    with pytest.raises(StorageError, match="Failed to unpack archive file model.zip. The file format is not valid."):
        initialize(str(tmp_path / "model.zip"), dest)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A static file server on 127.0.0.1 (port 0): (directory it serves, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_http_tar_gz_is_downloaded_and_extracted(http_root: tuple[Path, str], dest: Path) -> None:
    root, base = http_root
    (root / "iris.tar.gz").write_bytes(tar_gz(MODEL_FILES))
    initialize(f"{base}/iris.tar.gz", dest)
    assert tree(dest) == MODEL_FILES  # the archive itself is removed after extraction


def test_http_zip_is_downloaded_and_extracted(http_root: tuple[Path, str], dest: Path) -> None:
    root, base = http_root
    (root / "iris.zip").write_bytes(zipped(MODEL_FILES))
    initialize(f"{base}/iris.zip", dest)
    assert tree(dest) == MODEL_FILES


def test_http_single_file_is_downloaded(http_root: tuple[Path, str], dest: Path) -> None:
    root, base = http_root
    (root / "model.joblib").write_bytes(b"\x80\x04pickled")
    assert initialize(f"{base}/model.joblib", dest) == [dest / "model.joblib"]
    assert (dest / "model.joblib").read_bytes() == b"\x80\x04pickled"


def test_http_error_status_is_reported(http_root: tuple[Path, str], dest: Path) -> None:
    _, base = http_root
    with pytest.raises(StorageError, match=rf"^URI: {base}/missing.joblib returned a 404 response code\.$"):
        initialize(f"{base}/missing.joblib", dest)


def test_http_wrong_content_type_is_refused_like_kserve(http_root: tuple[Path, str], dest: Path) -> None:
    root, base = http_root
    (root / "model.txt").write_text("served as text/plain")
    with pytest.raises(StorageError, match="did not respond with any of following 'Content-Type': "
                                           "application/octet-stream"):
        initialize(f"{base}/model.txt", dest)


def test_unreachable_http_server_is_reported(dest: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StorageError, match=r"^Failed to connect to HTTP endpoint '127.0.0.1'\. \(ConnectError: "):
        initialize(f"http://127.0.0.1:{port}/m.joblib", dest)


def test_http_uri_without_filename_is_refused(dest: Path) -> None:
    with pytest.raises(StorageError, match="No filename contained in URI: http://127.0.0.1:1/"):
        initialize("http://127.0.0.1:1/", dest)


def test_s3_needs_an_endpoint(monkeypatch: pytest.MonkeyPatch, dest: Path) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("S3_ENDPOINT", raising=False)
    with pytest.raises(StorageError, match="set AWS_ENDPOINT_URL \\(or S3_ENDPOINT\\)"):
        initialize("s3://models/iris", dest)


def test_s3_without_boto3_says_so(monkeypatch: pytest.MonkeyPatch, dest: Path) -> None:
    monkeypatch.setenv("S3_ENDPOINT", "127.0.0.1:9000")
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if not installed, whatever this venv has
    with pytest.raises(StorageError, match="^Cannot fetch s3://models/iris: boto3 is not installed"):
        initialize("s3://models/iris", dest)


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """An in-process S3 (moto) answering at the endpoint the storage step is configured with."""
    pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    endpoint = "http://127.0.0.1:9000"
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "MOTO_S3_CUSTOM_ENDPOINTS": endpoint,
                        "AWS_ACCESS_KEY_ID": "lab", "AWS_SECRET_ACCESS_KEY": "lab"}.items():
        monkeypatch.setenv(name, value)
    import boto3

    with moto.mock_aws():
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket="models")
        yield client


def test_s3_prefix_is_copied_without_sibling_prefixes(s3_bucket, dest: Path) -> None:
    for name, text in MODEL_FILES.items():
        s3_bucket.put_object(Bucket="models", Key=f"iris/{name}", Body=text.encode())
    s3_bucket.put_object(Bucket="models", Key="iris-v2/MLmodel", Body=b"another model")
    initialize("s3://models/iris", dest)
    assert tree(dest) == MODEL_FILES


def test_s3_single_archive_object_is_extracted(s3_bucket, dest: Path) -> None:
    s3_bucket.put_object(Bucket="models", Key="archives/iris.tar.gz", Body=tar_gz(MODEL_FILES))
    initialize("s3://models/archives/iris.tar.gz", dest)
    assert tree(dest) == MODEL_FILES


def test_s3_failures_name_the_uri(s3_bucket, dest: Path) -> None:
    with pytest.raises(StorageError, match=r"^Failed to fetch model. No model found in s3://models/absent\.$"):
        initialize("s3://models/absent", dest)
    with pytest.raises(StorageError, match="^Cannot fetch s3://no-bucket/iris from http://127.0.0.1:9000: .*NoSuchBucket"):
        initialize("s3://no-bucket/iris", dest)


def test_cli_success_and_failure(source: Path, dest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(source), str(dest)]) == 0
    assert tree(dest) == MODEL_FILES
    assert main(["/no/such/model", str(dest)]) == 1
    assert capsys.readouterr().err == "Local path /no/such/model does not exist.\n"


def test_cli_as_a_process_exits_1_with_the_message_last_on_stderr(dest: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "lab_helpers.runtime.storage", "gs://bucket/model", str(dest)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("Cannot recognize storage type for gs://bucket/model")
