"""Where a model's files come from: choosing them in a directory or S3 prefix, digests, the node cache
(against a real moto S3 server over HTTP)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serve_app.core.errors import ModelUnavailable
from serve_app.models.source import MODEL_CACHE_ENV, choose_files, files_digest, locate, read_labels
from tests.d2_models import upload
from tests.s3_server import make_bucket, moto_s3_server, s3_client

BUCKET = "models"


def write_model(directory: Path, *, checkpoint: str = "model_final.pth", payload: bytes = b"weights") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text("MODEL:\n  META_ARCHITECTURE: GeneralizedRCNN\n")
    (directory / checkpoint).write_bytes(payload)
    (directory / "labels.json").write_text(json.dumps(["a", "b"]))
    (directory / "metrics.json").write_text("{}")  # what a training run leaves beside; never fetched
    return directory


def test_choose_files_prefers_model_final_then_last_checkpoint_then_a_single_one() -> None:
    names = ["config.yaml", "model_0000099.pth", "model_final.pth", "labels.json", "metrics.json"]
    assert choose_files(names, uri="u") == {
        "config": "config.yaml",
        "checkpoint": "model_final.pth",
        "labels": "labels.json",
    }
    two = ["config.yaml", "model_0000099.pth", "model_0000199.pth"]
    assert choose_files(two, uri="u", last="model_0000199.pth\n")["checkpoint"] == "model_0000199.pth"
    assert choose_files(two, uri="u", checkpoint="model_0000099.pth")["checkpoint"] == "model_0000099.pth"
    assert choose_files(["config.yaml", "zoo.pkl"], uri="u") == {
        "config": "config.yaml",
        "checkpoint": "zoo.pkl",
    }
    with pytest.raises(ModelUnavailable, match=r"several checkpoints .* name one with `checkpoint:`"):
        choose_files(two, uri="u")
    with pytest.raises(ModelUnavailable, match=r"has no config.yaml \(found: model_final.pth\)"):
        choose_files(["model_final.pth"], uri="u")
    with pytest.raises(ModelUnavailable, match="has no checkpoint"):
        choose_files(["config.yaml", "labels.json"], uri="u")
    with pytest.raises(ModelUnavailable, match=r"has no checkpoint 'other.pth'"):
        choose_files(two, uri="u", checkpoint="other.pth")


def test_read_labels_takes_a_list_or_thing_classes_and_rejects_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text('["stamp", "signature"]')
    assert read_labels(path) == ["stamp", "signature"]
    path.write_text('{"thing_classes": ["x"]}')
    assert read_labels(path) == ["x"]
    for bad in ("[]", '["a", "a"]', '["a", 3]', '{"classes": ["a"]}', "not json", '[" "]'):
        path.write_text(bad)
        with pytest.raises(ModelUnavailable, match=r"labels\.json"):
            read_labels(path)


def test_a_local_model_is_used_in_place_and_its_digest_ignores_file_names(tmp_path: Path) -> None:
    one = locate(str(write_model(tmp_path / "one")))
    assert one.config.parent == tmp_path / "one" and one.labels is not None
    two = locate((write_model(tmp_path / "two", checkpoint="other.pth")).as_uri())
    assert two.digest == one.digest  # same contents, the checkpoint renamed
    three = locate(str(write_model(tmp_path / "three", payload=b"other weights")))
    assert three.digest != one.digest
    assert locate(str(tmp_path / "one"), digest=one.digest).digest == one.digest
    with pytest.raises(ModelUnavailable, match=f"has digest {three.digest}, not the {one.digest} pinned"):
        locate(str(tmp_path / "three"), digest=one.digest)
    with pytest.raises(ModelUnavailable, match="does not exist"):
        locate(str(tmp_path / "missing"))
    with pytest.raises(ModelUnavailable, match="model URI 'http://x/y'"):
        locate("http://x/y")


def test_the_shipped_model_is_a_model_like_any_other() -> None:
    shipped = locate("shipped")
    assert shipped.checkpoint.name == "model_fp16.pth" and shipped.labels is not None
    assert read_labels(shipped.labels) == ["text", "title", "list", "table", "figure"]
    assert shipped.digest == files_digest(
        {"config": shipped.config, "checkpoint": shipped.checkpoint, "labels": shipped.labels}
    )


class CountingClient:
    """A real boto3 client that counts the objects it downloads."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.downloads: list[str] = []

    def download_file(self, bucket: str, key: str, path: str) -> None:
        self.downloads.append(key)
        self._client.download_file(bucket, key, path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        make_bucket(endpoint, BUCKET)
        yield endpoint


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(MODEL_CACHE_ENV, str(directory))
    return directory


def test_an_s3_model_is_fetched_once_verified_and_cached_by_digest(
    s3_endpoint: str, cache: Path, tmp_path: Path
) -> None:
    client = CountingClient(s3_client(s3_endpoint))
    local = locate(str(write_model(tmp_path / "m")))
    uri = upload(client, BUCKET, "m/v1", tmp_path / "m")
    first = locate(uri, client=client)
    assert first.digest == local.digest and first.config.parent == cache / local.digest
    assert sorted(client.downloads) == ["m/v1/config.yaml", "m/v1/labels.json", "m/v1/model_final.pth"]
    again = locate(uri, client=client, digest=local.digest)
    assert again == first and len(client.downloads) == 3  # served from the node cache
    # A damaged cached copy is noticed (re-hashed before use) and fetched again.
    first.checkpoint.write_bytes(b"truncated")
    repaired = locate(uri, client=client)
    assert repaired.digest == local.digest and len(client.downloads) == 6
    assert first.checkpoint.read_bytes() == b"weights"
    # A new version under the same prefix is a new listing: fetched, with a new digest.
    write_model(tmp_path / "m", payload=b"new weights")
    upload(client, BUCKET, "m/v1", tmp_path / "m")
    newer = locate(uri, client=client)
    assert newer.digest != local.digest and len(client.downloads) == 9
    with pytest.raises(ModelUnavailable, match=r"not the .* pinned"):
        locate(uri, client=client, digest=local.digest)


def test_s3_problems_are_clear_errors(s3_endpoint: str, cache: Path, tmp_path: Path) -> None:
    client = s3_client(s3_endpoint)
    with pytest.raises(ModelUnavailable, match=r"has no config.yaml \(found: nothing\)"):
        locate(f"s3://{BUCKET}/nothing-here/", client=client)
    with pytest.raises(ModelUnavailable, match=r"cannot read model s3://no-such-bucket/x/: .*NoSuchBucket"):
        locate("s3://no-such-bucket/x/", client=client)
    unreachable = s3_client("http://127.0.0.1:9", connect_timeout=1, retries={"max_attempts": 1})
    with pytest.raises(ModelUnavailable, match="cannot read model s3://models/x/: Could not connect"):
        locate(f"s3://{BUCKET}/x/", client=unreachable)
    shutil.rmtree(cache, ignore_errors=True)
