"""The Store contract, run against a local directory and a real S3 endpoint (moto's server over HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from serve_app.core import storage
from serve_app.core.errors import NotFound, StoreUnavailable
from serve_app.core.storage import (
    DEFAULT_STORE_DIR,
    STORE_URL_ENV,
    LocalStore,
    S3Store,
    Store,
    get_json,
    open_store,
    put_json,
)
from tests.s3_server import make_bucket, moto_s3_server, s3_client, s3_env


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def client(s3_endpoint: str) -> Any:
    # Explicit endpoint and credentials; a pool big enough for the threaded bulk test.
    return s3_client(s3_endpoint, max_pool_connections=16)


def new_bucket(endpoint: str) -> str:
    name = f"test-{uuid.uuid4().hex[:16]}"
    make_bucket(endpoint, name)
    return name


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if kind == "local":
        return LocalStore(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_endpoint")
    client = request.getfixturevalue("client")
    bucket = new_bucket(endpoint)
    if kind == "s3":
        return S3Store(bucket, client=client)
    # A neighbour just outside the prefix must never show through.
    client.put_object(Bucket=bucket, Key="run/10/a", Body=b"neighbour")
    return S3Store(bucket, "run/1", client=client)


@pytest.fixture(params=["local", "s3", "s3-prefixed"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return make_store(request.param, request, tmp_path)


@pytest.fixture(params=["local", "s3-prefixed"])
def bulk_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    # Plain "s3" would add seconds and no coverage: "s3-prefixed" both pages and strips the prefix.
    return make_store(request.param, request, tmp_path)


# --- the contract, for every backend ---------------------------------------------------------------


def test_put_get_roundtrip(store: Store) -> None:
    data = bytes(range(256)) * 4
    store.put("jobs/abc/result.bin", data)
    assert store.get("jobs/abc/result.bin") == data
    store.put("top", b"")
    assert store.get("top") == b""


def test_put_overwrites(store: Store) -> None:
    store.put("k", b"first")
    store.put("k", b"second, longer")
    assert store.get("k") == b"second, longer"
    assert store.list("") == ["k"]


def test_get_missing_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="nope/missing"):
        store.get("nope/missing")
    store.put("dir/file", b"x")
    with pytest.raises(NotFound):
        store.get("dir")  # a "directory" of keys is not itself a key


def test_exists(store: Store) -> None:
    assert not store.exists("a/b")
    store.put("a/b", b"1")
    assert store.exists("a/b")
    assert not store.exists("a")


def test_list_with_prefix(store: Store) -> None:
    assert store.list("") == []
    for key in ["jobs/2/out", "jobs/1/out", "jobs/1/log", "jobs10/x", "other"]:
        store.put(key, b"x")
    assert store.list("") == ["jobs/1/log", "jobs/1/out", "jobs/2/out", "jobs10/x", "other"]
    assert store.list("jobs/") == ["jobs/1/log", "jobs/1/out", "jobs/2/out"]
    assert store.list("jobs") == ["jobs/1/log", "jobs/1/out", "jobs/2/out", "jobs10/x"]
    assert store.list("jobs/1/") == ["jobs/1/log", "jobs/1/out"]
    assert store.list("jobs/1/o") == ["jobs/1/out"]
    assert store.list("missing/") == []


def test_list_more_than_one_page(bulk_store: Store) -> None:
    # S3 returns at most 1000 keys per ListObjectsV2 call; the store must follow the pages.
    store = bulk_store
    keys = [f"many/{i:04d}" for i in range(1005)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: store.put(key, b""), keys))
    store.put("few/0", b"")
    assert store.list("many/") == keys
    assert len(store.list("")) == 1006


def test_delete(store: Store) -> None:
    store.put("gone/soon", b"x")
    store.put("gone/stays", b"y")
    store.delete("gone/soon")
    assert not store.exists("gone/soon")
    assert store.list("gone/") == ["gone/stays"]
    store.delete("gone/soon")  # missing: no error
    store.delete("never/was")


@pytest.mark.parametrize(
    "key", ["", "/abs", "a/../b", "..", "../up", "a/..", "a\\b", "a//b", "a/./b", "trailing/"]
)
def test_invalid_keys_are_rejected(store: Store, key: str) -> None:
    for call in (
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(ValueError, match="store key"):
            call()


@pytest.mark.parametrize("prefix", ["/abs", "../", "a/../", "a\\"])
def test_invalid_list_prefixes_are_rejected(store: Store, prefix: str) -> None:
    with pytest.raises(ValueError, match="store key"):
        store.list(prefix)


def test_json_helpers(store: Store) -> None:
    obj = {"b": [1, 2.5, None], "a": {"z": True, "y": "héllo"}}
    put_json(store, "jobs/1/result.json", obj)
    assert get_json(store, "jobs/1/result.json") == obj
    raw = store.get("jobs/1/result.json")
    assert raw.index(b'"a"') < raw.index(b'"b"')  # sort_keys
    assert "héllo".encode() in raw
    with pytest.raises(NotFound):
        get_json(store, "jobs/1/missing.json")


def test_store_satisfies_protocol(store: Store) -> None:
    assert isinstance(store, Store)
    assert store.url.startswith(("file:///", "s3://"))


# --- backend specifics ----------------------------------------------------------------------------


def test_local_store_creates_root_on_demand_and_hides_partial_files(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    store = LocalStore(root)
    assert store.url == root.as_uri()
    assert store.list("") == []
    assert not root.exists()
    store.put("x/y", b"1")
    assert (root / "x" / "y").read_bytes() == b"1"
    (root / "x" / ".y.abc123.partial").write_bytes(b"interrupted write")
    assert store.list("") == ["x/y"]


def test_local_put_failure_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    store.put("k", b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(storage.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        store.put("k", b"new")
    monkeypatch.undo()
    assert store.get("k") == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_s3_content_type_and_prefix_layout(s3_endpoint: str, client: Any) -> None:
    bucket = new_bucket(s3_endpoint)
    store = S3Store(bucket, "/results/v1/", client=client)
    assert store.url == f"s3://{bucket}/results/v1"
    put_json(store, "jobs/1.json", {"ok": True})
    store.put("blob", b"x")
    head = client.head_object(Bucket=bucket, Key="results/v1/jobs/1.json")
    assert head["ContentType"] == "application/json"
    assert (
        client.head_object(Bucket=bucket, Key="results/v1/blob")["ContentType"] == "application/octet-stream"
    )
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(obj["Key"] for obj in listed) == ["results/v1/blob", "results/v1/jobs/1.json"]


def test_s3_missing_bucket_is_not_a_missing_key(s3_endpoint: str, client: Any) -> None:
    # A bucket that is gone makes the store unusable (503 store_unavailable; a running job waits for it).
    store = S3Store(f"absent-{uuid.uuid4().hex[:12]}", client=client)
    for call in (lambda: store.get("k"), lambda: store.put("k", b"x"), lambda: store.list("")):
        with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
            call()


def test_an_s3_endpoint_that_does_not_answer_is_store_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.launch import free_port

    for name, value in s3_env("http://127.0.0.1:1").items():  # dummy credentials
        monkeypatch.setenv(name, value)
    url = f"s3://bucket/jobs?endpoint_url=http://127.0.0.1:{free_port()}"  # nothing listens there
    store = open_store(url)
    assert isinstance(store, S3Store) and store.url == url
    for call in (lambda: store.get("k"), lambda: store.put("k", b"x"), lambda: store.exists("k")):
        with pytest.raises(StoreUnavailable, match="cannot be reached: EndpointConnectionError") as caught:
            call()
        assert caught.value.status == 503 and caught.value.retry_after_s == 5


def test_the_store_url_may_name_its_endpoint(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # the chain's endpoint is not used
    bucket = f"named-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    store = open_store(f"s3://{bucket}/p?endpoint_url={s3_endpoint}")
    store.put("a/b.json", b"{}")
    assert store.list("a/") == ["a/b.json"]
    for bad in (
        "s3://b/p?region=x",
        f"s3://b?endpoint_url=ftp://h&endpoint_url={s3_endpoint}",
        "s3://b?endpoint_url=h",
    ):
        with pytest.raises(ValueError, match="endpoint_url"):
            open_store(bad)


def test_open_store_s3_from_environment_only(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    for name, value in s3_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    bucket = new_bucket(s3_endpoint)

    store = open_store(f"s3://{bucket}/pfx")
    assert isinstance(store, S3Store)
    store.put("a", b"hello")
    assert store.get("a") == b"hello"
    assert s3_client(s3_endpoint).get_object(Bucket=bucket, Key="pfx/a")["Body"].read() == b"hello"

    monkeypatch.setenv(STORE_URL_ENV, f"s3://{bucket}")
    assert open_store().list("") == ["pfx/a"]


# --- open_store parsing ---------------------------------------------------------------------------


def test_open_store_local_urls(tmp_path: Path) -> None:
    for url in (tmp_path.as_uri(), f"file://localhost{tmp_path}", str(tmp_path), f"{tmp_path}/"):
        store = open_store(url)
        assert isinstance(store, LocalStore)
        assert store.root == tmp_path
        assert store.url == tmp_path.as_uri()
    spaced = tmp_path / "with space"
    store = open_store(spaced.as_uri())  # percent-encoded
    assert isinstance(store, LocalStore)
    assert store.root == spaced


def test_open_store_relative_path_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("results")
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "results"


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://b", "b", ""),
        ("s3://b/", "b", ""),
        ("s3://b/p", "b", "p"),
        ("s3://b/p/q", "b", "p/q"),
        ("s3://b/p/q/", "b", "p/q"),
    ],
)
def test_open_store_s3_urls(url: str, bucket: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # building a client needs no network
    store = open_store(url)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == (bucket, prefix)
    assert store.url == (f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}")


def test_open_store_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    for url in (None, ""):
        store = open_store(url)
        assert isinstance(store, LocalStore)
        assert store.root == DEFAULT_STORE_DIR.resolve()
    monkeypatch.setenv(STORE_URL_ENV, str(tmp_path))
    store = open_store()
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path
    # An explicit URL wins over the environment.
    other = tmp_path / "other"
    assert open_store(str(other)).url == other.as_uri()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/x", "unsupported store URL scheme 'http'"),
        ("gs://bucket/x", "unsupported store URL scheme 'gs'"),
        ("s3:///no-bucket", "needs a bucket"),
        ("s3://b/a/../c", "store key"),
        ("file://remote-host/dir", "must be local"),
    ],
)
def test_open_store_rejects_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)
