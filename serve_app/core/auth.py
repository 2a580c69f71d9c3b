"""Optional bearer-token API keys, per-key quotas, and fair scheduling of queued jobs between keys.

Keys are configured as SHA-256 hashes (never the keys themselves) in ``SERVE_APP_API_KEYS``, a JSON object
mounted from a Kubernetes Secret::

    {"ci": {"sha256": "<64 lowercase hex>", "max_jobs": 2},
     "batch": {"sha256": "...", "webhook_secret": "<16+ chars>", "max_pages": 500, "disabled": false}}

or kept in a file named by ``SERVE_APP_API_KEYS_FILE`` (a Secret mounted as a volume), which is read again
whenever it changes, so keys rotate without a restart (``KeySource``).

Nothing configured (unset, empty, or ``{}``) turns authentication off: every request is anonymous.
Tokens are hashed and compared in constant time against every configured hash; neither tokens, hashes
nor webhook secrets appear in error messages or reprs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from collections import deque
from collections.abc import Hashable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Re-exported: the HTTP layer may import the errors it maps from here or from errors.
from serve_app.core.errors import Forbidden, LimitExceeded, TooManyRequests, Unauthorized, Unavailable

__all__ = [
    "KEYS_ENV",
    "KEYS_FILE_ENV",
    "ApiKey",
    "FairQueue",
    "Forbidden",
    "KeySource",
    "KeyTable",
    "TooManyRequests",
    "Unauthorized",
    "check_quota",
    "hash_key",
    "new_key",
]

KEYS_ENV = "SERVE_APP_API_KEYS"
KEYS_FILE_ENV = "SERVE_APP_API_KEYS_FILE"
logger = logging.getLogger("ray.serve")
KEY_PREFIX = "sa_"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_SHA256 = r"^[0-9a-f]{64}$"
_MISSING = "missing API key: send Authorization: Bearer <key>"


class _Entry(BaseModel):
    """One key's entry in ``SERVE_APP_API_KEYS`` (its name is the JSON object's key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str = Field(pattern=_SHA256)
    webhook_secret: str | None = Field(default=None, min_length=16, repr=False)
    disabled: bool = False
    max_jobs: int | None = Field(default=None, ge=0)
    max_pages: int | None = Field(default=None, ge=0)


class ApiKey(BaseModel):
    """A configured API key: its name, the hash of the token, and its own limits (None: service defaults).

    ``max_jobs`` bounds this key's queued + running jobs, ``max_pages`` the pages of those jobs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    sha256: str = Field(pattern=_SHA256)
    webhook_secret: str | None = Field(default=None, min_length=16, repr=False)
    disabled: bool = False
    max_jobs: int | None = Field(default=None, ge=0)
    max_pages: int | None = Field(default=None, ge=0)


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key's UTF-8 bytes: what ``SERVE_APP_API_KEYS`` stores."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh random key (``sa_`` + 32 random bytes, URL-safe) and its hash."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_key(key)


def _describe(error: ValidationError) -> str:
    """Which fields are wrong and why, without the offending values (they may be secrets)."""
    parts = []
    for detail in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in detail["loc"]) or "entry"
        parts.append(f"{where}: {detail['msg']}")
    return "; ".join(parts)


def _no_duplicate_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise ValueError(f"{KEYS_ENV}: key name {name!r} appears twice")
        seen[name] = value
    return seen


class KeyTable:
    """The configured API keys; ``enabled`` is False (authentication off) when there are none."""

    def __init__(self, keys: tuple[ApiKey, ...] = ()) -> None:
        self._keys = keys
        self._by_name = {key.name: key for key in keys}
        if len(self._by_name) != len(keys):
            raise ValueError(f"{KEYS_ENV}: duplicate key names")
        by_hash: dict[str, str] = {}
        for key in keys:
            if key.sha256 in by_hash:
                raise ValueError(
                    f"{KEYS_ENV}: keys {by_hash[key.sha256]!r} and {key.name!r} have the same sha256"
                )
            by_hash[key.sha256] = key.name

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> KeyTable:
        """The table configured in ``environ[SERVE_APP_API_KEYS]`` (empty when unset)."""
        return cls.parse(environ.get(KEYS_ENV))

    @classmethod
    def parse(cls, text: str | None) -> KeyTable:
        """Parse the JSON object of ``SERVE_APP_API_KEYS``; ``ValueError`` (no secrets in it) if invalid."""
        if text is None or not text.strip():
            return cls()
        try:
            raw = json.loads(text, object_pairs_hook=_no_duplicate_names)
        except json.JSONDecodeError as e:  # its message has a position, not the text
            raise ValueError(
                f"{KEYS_ENV} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
            ) from None
        if not isinstance(raw, dict):
            raise ValueError(f"{KEYS_ENV} must be a JSON object mapping key names to entries")
        keys = []
        for position, (name, entry) in enumerate(raw.items(), start=1):
            if not re.fullmatch(_NAME, name):  # not echoed: a pasted token could land here
                raise ValueError(
                    f"{KEYS_ENV}: the name of key #{position} is invalid: use 1-64 letters, digits, '_', '.'"
                    " or '-', starting with a letter or digit"
                )
            if not isinstance(entry, dict):
                raise ValueError(f"{KEYS_ENV}: key {name!r} must be a JSON object with at least 'sha256'")
            try:
                parsed = _Entry.model_validate(entry)
            except ValidationError as e:
                raise ValueError(f"{KEYS_ENV}: key {name!r} is invalid: {_describe(e)}") from None
            keys.append(
                ApiKey(
                    name=name,
                    sha256=parsed.sha256,
                    webhook_secret=parsed.webhook_secret,
                    disabled=parsed.disabled,
                    max_jobs=parsed.max_jobs,
                    max_pages=parsed.max_pages,
                )
            )
        return cls(tuple(keys))

    @property
    def enabled(self) -> bool:
        """Whether any key is configured (disabled ones included): then every request needs a key."""
        return bool(self._keys)

    @property
    def keys(self) -> tuple[ApiKey, ...]:
        """The configured keys, in configuration order."""
        return self._keys

    def get(self, name: str) -> ApiKey | None:
        """The key called ``name``, if configured."""
        return self._by_name.get(name)

    def authenticate(self, authorization: str | None) -> ApiKey | None:
        """The key of an ``Authorization`` header's bearer token; None when authentication is off.

        Raises ``Unauthorized`` (no or unknown key) or ``Forbidden`` (disabled key). The token's hash is
        compared with every configured hash, without early exit, so timing does not tell which matched.
        """
        if not self._keys:
            return None
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(_MISSING)
        digest = hash_key(token).encode("ascii")
        found: ApiKey | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.sha256.encode("ascii")):
                found = key
        if found is None:
            raise Unauthorized("invalid API key")
        if found.disabled:
            raise Forbidden(f"API key {found.name!r} is disabled")
        return found


class KeySource:
    """The current ``KeyTable``: from ``SERVE_APP_API_KEYS_FILE`` (read again when the file changes) if set,
    else from ``SERVE_APP_API_KEYS`` (read once; an invalid table raises ``ValueError`` here, failing the
    deploy). A key file that cannot be read or parsed fails closed: every request that needs a key is
    answered 503 until it is fixed (authentication is never silently switched off)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.path = env.get(KEYS_FILE_ENV) or None
        self._table = KeyTable() if self.path else KeyTable.from_env(env)
        self._stamp: tuple[int, int] | None = None
        self._error: str | None = None

    def current(self) -> KeyTable:
        if self.path is None:
            return self._table
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                with open(self.path, encoding="utf-8") as f:
                    self._table = KeyTable.parse(f.read())
                self._stamp, self._error = stamp, None
                logger.info("API keys: %d configured (from %s)", len(self._table.keys), KEYS_FILE_ENV)
        except (OSError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc.strerror}"
            if reason != self._error:
                logger.error("API keys cannot be read from %s: %s", KEYS_FILE_ENV, reason)
            self._stamp, self._error = None, reason
        if self._error is not None:
            raise Unavailable(f"API keys cannot be read ({KEYS_FILE_ENV}); see the service logs")
        return self._table


Owner = str | None
J = TypeVar("J", bound=Hashable)


class FairQueue(Generic[J]):
    """Queued jobs of several owners (API key names; None: anonymous), started fairly.

    ``pop`` skips owners already at ``max_running_per_owner``, then serves the owner with the fewest
    running jobs, ties going to the owner served least recently (round robin), and within an owner the
    oldest job first. So one key's long job (or many queued ones) cannot starve another key's short job:
    the other key's job starts as soon as a runner is free, whatever was queued before it.
    """

    def __init__(self) -> None:
        self._queues: dict[Owner, deque[tuple[int, J]]] = {}
        self._owner_of: dict[J, Owner] = {}
        self._last_served: dict[Owner, int] = {}  # kept when a queue empties: re-queueing does not jump ahead
        self._seq = 0

    def __len__(self) -> int:
        return len(self._owner_of)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._owner_of

    def owners(self) -> list[Owner]:
        """The owners with queued jobs."""
        return list(self._queues)

    def queued(self, owner: Owner) -> int:
        """How many jobs ``owner`` has queued."""
        queue = self._queues.get(owner)
        return len(queue) if queue else 0

    def push(self, owner: Owner, job_id: J) -> None:
        """Queue ``job_id`` for ``owner`` (behind the owner's earlier jobs)."""
        if job_id in self._owner_of:
            raise ValueError(f"job {job_id!r} is already queued")
        self._seq += 1
        self._queues.setdefault(owner, deque()).append((self._seq, job_id))
        self._owner_of[job_id] = owner

    def remove(self, job_id: J) -> bool:
        """Drop a queued job (for example, cancelled); False if it was not queued."""
        if job_id not in self._owner_of:
            return False
        owner = self._owner_of.pop(job_id)
        queue = self._queues[owner]
        for entry in queue:
            if entry[1] == job_id:
                queue.remove(entry)
                break
        if not queue:
            del self._queues[owner]
        return True

    def pop(self, running: Mapping[Owner, int], *, max_running_per_owner: int) -> tuple[Owner, J] | None:
        """The next job to start and its owner, given each owner's running jobs; None if none is eligible."""
        best: tuple[tuple[int, int, int], Owner] | None = None
        for owner, queue in self._queues.items():
            count = running.get(owner, 0)
            if count >= max_running_per_owner:
                continue
            rank = (count, self._last_served.get(owner, 0), queue[0][0])
            if best is None or rank < best[0]:
                best = (rank, owner)
        if best is None:
            return None
        owner = best[1]
        queue = self._queues[owner]
        _, job_id = queue.popleft()
        if not queue:
            del self._queues[owner]
        del self._owner_of[job_id]
        self._seq += 1
        self._last_served[owner] = self._seq
        return owner, job_id


def check_quota(*, owner_jobs: int, owner_pages: int, new_pages: int, max_jobs: int, max_pages: int) -> None:
    """Admit a new job of ``new_pages`` pages for an owner with ``owner_jobs`` / ``owner_pages`` in flight.

    Raises ``TooManyRequests`` (429, retry later) when a limit would be passed, or ``LimitExceeded``
    (413) when the document alone has more pages than ``max_pages``: retrying could never succeed.
    """
    if new_pages > max_pages:
        raise LimitExceeded(
            f"this document has {new_pages} pages but an API key may have at most {max_pages} pages"
            " queued or running"
        )
    if owner_jobs >= max_jobs:
        raise TooManyRequests(
            f"this API key has {owner_jobs} jobs queued or running (limit {max_jobs});"
            " retry when one finishes"
        )
    if owner_pages + new_pages > max_pages:
        raise TooManyRequests(
            f"this API key has {owner_pages} pages queued or running and this document has {new_pages}"
            f" (limit {max_pages}); retry when a job finishes"
        )
