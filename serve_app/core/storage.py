"""Where job results live: an S3 bucket (via boto3) or a local directory, behind one small ``Store`` protocol.

Pick a store with :func:`open_store`:

- ``s3://bucket`` or ``s3://bucket/some/prefix`` -> :class:`S3Store`; ``?endpoint_url=http://host:port``
  names an S3-compatible endpoint for this store only (otherwise boto3's chain decides)
- ``file:///abs/dir`` or a plain filesystem path -> :class:`LocalStore`
- nothing -> the URL in ``SERVE_APP_STORE_URL`` if set, else :data:`DEFAULT_STORE_DIR` (a local directory)

Environment variables:

- ``SERVE_APP_STORE_URL``: the store URL used when none is given (any of the forms above).
- For S3, boto3's own configuration chain applies unchanged: ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``
  (for MinIO, moto, ...), ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
  ``AWS_PROFILE``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, instance and container roles, and so on.

Keys are "/"-separated paths relative to the store root, such as ``jobs/1234/result.json``. Empty keys,
keys starting with "/", backslashes, and "", "." or ".." segments are rejected with ``ValueError`` so a key
means the same object in every backend and can never escape a local root.
A missing key raises :class:`~serve_app.core.errors.NotFound` from ``get``;
``delete`` of a missing key is a no-op. An S3 endpoint that cannot be reached (connection refused or
dropped, timeouts, 5xx answers, a bucket that is gone) raises
:class:`~serve_app.core.errors.StoreUnavailable`: the caller may wait and retry.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

from serve_app.core.errors import NotFound, StoreUnavailable

STORE_URL_ENV = "SERVE_APP_STORE_URL"
DEFAULT_STORE_DIR = Path(tempfile.gettempdir()) / "serve_app_store"

# LocalStore writes into "<dir>/.<name>.<random>.partial" and renames; list() never reports these.
_PARTIAL_PREFIX = "."
_PARTIAL_SUFFIX = ".partial"


@runtime_checkable
class Store(Protocol):
    """A flat key -> bytes store. Keys are "/"-separated and relative to the store root."""

    url: str

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Write ``data`` under ``key``, replacing any previous value."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; raises ``NotFound`` if there are none."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a value."""
        ...

    def list(self, prefix: str) -> builtins.list[str]:
        """All keys starting with ``prefix`` (plain string prefix, "" for all), sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...


def check_key(key: str) -> str:
    """Return ``key`` unchanged if it is a valid store key, else raise ``ValueError`` saying why."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"store key must be a non-empty string, got {key!r}")
    if key.startswith("/"):
        raise ValueError(f"store key must be relative (no leading '/'): {key!r}")
    if "\\" in key:
        raise ValueError(f"store key must use '/' separators, not backslashes: {key!r}")
    if "\x00" in key:
        raise ValueError(f"store key must not contain NUL characters: {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"store key must not contain empty, '.' or '..' path segments: {key!r}")
    return key


def _check_prefix(prefix: str) -> str:
    """A list prefix: like a key, but may be empty and may end with '/' (or stop mid-segment)."""
    if not isinstance(prefix, str):
        raise ValueError(f"store prefix must be a string, got {prefix!r}")
    if prefix:
        check_key(prefix.removesuffix("/"))
    return prefix


class LocalStore:
    """A store in a local directory; ``put`` is atomic (temp file in the same directory + ``os.replace``).

    Limitation of a filesystem: a key cannot also be a "directory" of other keys (``a`` and ``a/b``).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Write atomically: readers see the old value or the new one, never a partial file."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f"{_PARTIAL_PREFIX}{path.name}.", suffix=_PARTIAL_SUFFIX, dir=path.parent
        )
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no stored object {key!r} in {self.url}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> builtins.list[str]:
        _check_prefix(prefix)
        # Only walk the directory that can contain matches: "jobs/12" -> <root>/jobs.
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*head.split("/")) if head else self.root
        keys: builtins.list[str] = []
        for dirpath, _dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(_PARTIAL_PREFIX) and name.endswith(_PARTIAL_SUFFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self._path(key).unlink()


def default_s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client from the AWS chain (env, profile, role); bounded retries and timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30)
    return boto3.client("s3", config=config, endpoint_url=endpoint_url)


@contextlib.contextmanager
def _reachable(url: str) -> Iterator[None]:
    """Connection failures, timeouts, 5xx answers and a missing bucket become ``StoreUnavailable``."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    try:
        yield
    except (ConnectionError, HTTPClientError) as exc:
        raise StoreUnavailable(f"the store {url} cannot be reached: {type(exc).__name__}: {exc}") from None
    except ClientError as exc:
        code, status = _error_code(exc)
        if code == "NoSuchBucket" or (status or 0) >= 500:
            raise StoreUnavailable(f"the store {url} is not usable now: {code or status}: {exc}") from None
        raise


def _error_code(exc: Exception) -> tuple[str, int | None]:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code, status


class S3Store:
    """A store in an S3 bucket, optionally under a key prefix ("s3://bucket/prefix")."""

    def __init__(
        self, bucket: str, prefix: str = "", *, client: Any | None = None, endpoint_url: str | None = None
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"S3 bucket name must be non-empty and contain no '/': {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        if endpoint_url:
            self.url += f"?endpoint_url={endpoint_url}"
        self._client: Any = client if client is not None else default_s3_client(endpoint_url)

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        with _reachable(self.url):
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
            )

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            with _reachable(self.url):
                response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            code, status = _error_code(exc)
            # A missing bucket is a configuration error, not a missing result: let it propagate.
            if code in ("NoSuchKey", "NotFound", "404") or (status == 404 and code != "NoSuchBucket"):
                raise NotFound(f"no stored object {key!r} in {self.url}") from None
            raise
        body = response["Body"]
        try:
            with _reachable(self.url):
                return bytes(body.read())
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            with _reachable(self.url):
                self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            code, status = _error_code(exc)
            if code in ("NoSuchKey", "NotFound", "404") or status == 404:
                return False
            raise
        return True

    def list(self, prefix: str) -> builtins.list[str]:
        _check_prefix(prefix)
        root = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        keys: builtins.list[str] = []
        with _reachable(self.url):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=root + prefix):
                keys.extend(obj["Key"][len(root) :] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        # S3 answers 204 for a missing key too.
        with _reachable(self.url):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))


def open_store(url: str | None = None) -> Store:
    """The store for ``url``: ``s3://bucket[/prefix]``, ``file:///abs/dir`` or a path.

    With no URL, uses ``$SERVE_APP_STORE_URL`` if set, else :data:`DEFAULT_STORE_DIR`.
    """
    if not url:
        url = os.environ.get(STORE_URL_ENV, "").strip()
        if not url:
            return LocalStore(DEFAULT_STORE_DIR)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"S3 store URL needs a bucket, like s3://bucket/prefix: {url!r}")
        query = parse_qs(parts.query)
        unknown = sorted(set(query) - {"endpoint_url"})
        if unknown or len(query.get("endpoint_url", [])) > 1:
            raise ValueError(f"S3 store URL takes one query parameter, endpoint_url: {url!r}")
        endpoint = query.get("endpoint_url", [None])[0]
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise ValueError(f"endpoint_url must be an http(s) URL: {url!r}")
        return S3Store(parts.netloc, unquote(parts.path).strip("/"), endpoint_url=endpoint)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file store URL must be local, like file:///abs/dir: {url!r}")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"file store URL needs an absolute path, like file:///abs/dir: {url!r}")
        return LocalStore(Path(path))
    if scheme == "":
        return LocalStore(Path(url))
    raise ValueError(
        f"unsupported store URL scheme {parts.scheme!r} in {url!r}; "
        "use s3://bucket[/prefix], file:///abs/dir or a filesystem path"
    )


def put_json(store: Store, key: str, obj: Any) -> None:
    """Store ``obj`` as UTF-8 JSON (sorted keys) with content type application/json."""
    data = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")
    store.put(key, data, content_type="application/json")


def get_json(store: Store, key: str) -> Any:
    """Load the JSON value stored under ``key``; raises ``NotFound`` if it is missing."""
    return json.loads(store.get(key))
