"""API keys (parsing, authentication), per-key quotas and the fair queue: pure logic."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from serve_app.core import errors
from serve_app.core.auth import (
    KEYS_ENV,
    ApiKey,
    FairQueue,
    Forbidden,
    KeyTable,
    TooManyRequests,
    Unauthorized,
    check_quota,
    hash_key,
    new_key,
)
from serve_app.core.errors import LimitExceeded

SECRET = "whsec-0123456789abcdef"
KEY_A = "sa_alpha-token"
KEY_B = "sa_bravo-token"
KEY_OFF = "sa_disabled-token"


def table_text(**entries: dict[str, Any]) -> str:
    return json.dumps(entries)


@pytest.fixture
def table() -> KeyTable:
    return KeyTable.parse(
        table_text(
            alpha={"sha256": hash_key(KEY_A), "webhook_secret": SECRET, "max_jobs": 2, "max_pages": 100},
            bravo={"sha256": hash_key(KEY_B)},
            old={"sha256": hash_key(KEY_OFF), "disabled": True},
        )
    )


# --- parsing -------------------------------------------------------------------------------------------


def test_parse_valid_table(table: KeyTable) -> None:
    assert table.enabled
    alpha = table.get("alpha")
    assert alpha == ApiKey(
        name="alpha", sha256=hash_key(KEY_A), webhook_secret=SECRET, max_jobs=2, max_pages=100
    )
    bravo = table.get("bravo")
    assert bravo is not None
    assert (bravo.webhook_secret, bravo.disabled, bravo.max_jobs, bravo.max_pages) == (
        None,
        False,
        None,
        None,
    )
    old = table.get("old")
    assert old is not None and old.disabled
    assert table.get("nobody") is None
    assert [k.name for k in table.keys] == ["alpha", "bravo", "old"]


@pytest.mark.parametrize("text", [None, "", "  \n", "{}"])
def test_nothing_configured_disables_auth(text: str | None) -> None:
    assert not KeyTable.parse(text).enabled


def test_from_env() -> None:
    assert not KeyTable.from_env({}).enabled
    keys = KeyTable.from_env({KEYS_ENV: table_text(a={"sha256": hash_key(KEY_A)})})
    assert keys.enabled and keys.get("a") is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"alpha": {"sha256": "' + "a" * 64 + '"', "not valid JSON"),
        ("[]", "must be a JSON object"),
        (table_text(alpha="abc"), "key 'alpha' must be a JSON object"),  # type: ignore[arg-type]
        (table_text(alpha={"sha256": "ab" * 31}), "key 'alpha' is invalid: sha256"),
        (table_text(alpha={"sha256": "AB" * 32}), "key 'alpha' is invalid: sha256"),
        (table_text(alpha={}), "key 'alpha' is invalid: sha256"),
        (table_text(alpha={"sha256": hash_key(KEY_A), "extra": 1}), "key 'alpha' is invalid: extra"),
        (table_text(alpha={"sha256": hash_key(KEY_A), "max_jobs": -1}), "max_jobs"),
        (table_text(alpha={"sha256": hash_key(KEY_A), "webhook_secret": "short-secret"}), "webhook_secret"),
        (
            table_text(alpha={"sha256": hash_key(KEY_A)}, bravo={"sha256": hash_key(KEY_A)}),
            "keys 'alpha' and 'bravo' have the same sha256",
        ),
        (
            '{"alpha": {"sha256": "'
            + hash_key(KEY_A)
            + '"}, "alpha": {"sha256": "'
            + hash_key(KEY_B)
            + '"}}',
            "'alpha' appears twice",
        ),
    ],
)
def test_parse_rejects_invalid_tables(text: str, expected: str) -> None:
    with pytest.raises(ValueError, match=KEYS_ENV) as info:
        KeyTable.parse(text)
    assert expected in str(info.value)


@pytest.mark.parametrize("name", ["", "-lead", "has space", "x" * 65, "é"])
def test_parse_rejects_bad_names_without_echoing_them(name: str) -> None:
    with pytest.raises(ValueError, match="name of key #1 is invalid") as info:
        KeyTable.parse(json.dumps({name: {"sha256": hash_key(KEY_A)}}))
    if name:
        assert name not in str(info.value)


def test_error_messages_do_not_echo_secrets() -> None:
    short = "short-secret-xy"  # 15 chars: one too few
    bad_hash = "f" * 63
    for text, secret in [
        (table_text(alpha={"sha256": hash_key(KEY_A), "webhook_secret": short}), short),
        (table_text(alpha={"sha256": bad_hash}), bad_hash),
        ('{"alpha": {"sha256": "' + hash_key(KEY_A) + '", ', hash_key(KEY_A)),
        (table_text(alpha={"sha256": hash_key(KEY_A)}, bravo={"sha256": hash_key(KEY_A)}), hash_key(KEY_A)),
    ]:
        with pytest.raises(ValueError) as info:
            KeyTable.parse(text)
        assert secret not in str(info.value)
        error = info.value  # a chained pydantic or JSON error would carry the input into tracebacks
        assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_repr_hides_webhook_secret(table: KeyTable) -> None:
    alpha = table.get("alpha")
    assert alpha is not None
    for text in (repr(alpha), str(alpha), repr(table.keys)):
        assert SECRET not in text
        assert "alpha" in text


def test_api_key_is_frozen(table: KeyTable) -> None:
    alpha = table.get("alpha")
    assert alpha is not None
    with pytest.raises(ValueError):
        alpha.disabled = True


# --- authentication ------------------------------------------------------------------------------------


def test_disabled_auth_lets_everyone_in() -> None:
    keys = KeyTable.parse(None)
    assert keys.authenticate(None) is None
    assert keys.authenticate("Bearer whatever") is None


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer   ", f"Basic {KEY_A}", KEY_A, f"Token {KEY_A}"]
)
def test_missing_key_or_wrong_scheme_is_unauthorized(table: KeyTable, header: str | None) -> None:
    with pytest.raises(Unauthorized, match="missing API key: send Authorization: Bearer <key>") as info:
        table.authenticate(header)
    assert (info.value.status, info.value.code) == (401, "unauthorized")


@pytest.mark.parametrize("token", ["sa_wrong", KEY_A + "x", hash_key(KEY_A), KEY_A.upper()])
def test_wrong_key_is_unauthorized(table: KeyTable, token: str) -> None:
    with pytest.raises(Unauthorized) as info:
        table.authenticate(f"Bearer {token}")
    assert info.value.message == "invalid API key"
    assert token not in info.value.message


@pytest.mark.parametrize(
    "header", [f"Bearer {KEY_A}", f"bearer {KEY_A}", f"BEARER  {KEY_A} ", f" Bearer {KEY_A}"]
)
def test_right_key_authenticates(table: KeyTable, header: str) -> None:
    key = table.authenticate(header)
    assert key is not None and key.name == "alpha"
    other = table.authenticate(f"Bearer {KEY_B}")
    assert other is not None and other.name == "bravo"


def test_disabled_key_is_forbidden(table: KeyTable) -> None:
    with pytest.raises(Forbidden) as info:
        table.authenticate(f"Bearer {KEY_OFF}")
    assert info.value.message == "API key 'old' is disabled"
    assert (info.value.status, info.value.code) == (403, "forbidden")


def test_authenticate_compares_every_key(table: KeyTable, monkeypatch: pytest.MonkeyPatch) -> None:
    import serve_app.core.auth as auth

    calls: list[bytes] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    table.authenticate(f"Bearer {KEY_A}")  # the first key matches: the others are still compared
    assert len(calls) == 3


def test_new_key_round_trip() -> None:
    key, digest = new_key()
    assert key.startswith("sa_") and len(key) > 40
    assert digest == hash_key(key) and len(digest) == 64
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert new_key()[0] != key
    keys = KeyTable.parse(table_text(cli={"sha256": digest}))
    found = keys.authenticate(f"Bearer {key}")
    assert found is not None and found.name == "cli"


def test_errors_are_the_ones_in_the_error_table() -> None:
    for error in (Unauthorized, Forbidden, TooManyRequests):
        assert error in errors.HTTP_ERRORS


def test_new_errors_are_typed_and_picklable() -> None:
    for error, status, code in [(Unauthorized, 401, "unauthorized"), (Forbidden, 403, "forbidden")]:
        assert (error.status, error.code) == (status, code)
    assert (TooManyRequests.status, TooManyRequests.code, TooManyRequests.retry_after_s) == (
        429,
        "rate_limited",
        30,
    )
    copy = pickle.loads(pickle.dumps(TooManyRequests("slow down")))
    assert isinstance(copy, TooManyRequests) and copy.message == "slow down" and copy.retry_after_s == 30


# --- fair queue ----------------------------------------------------------------------------------------


def drain(
    queue: FairQueue[str], running: dict[str | None, int] | None = None
) -> list[tuple[str | None, str]]:
    order = []
    while (item := queue.pop(running or {}, max_running_per_owner=10)) is not None:
        order.append(item)
    return order


def test_fifo_within_an_owner() -> None:
    queue: FairQueue[str] = FairQueue()
    for job in ("j1", "j2", "j3"):
        queue.push("a", job)
    assert len(queue) == 3 and "j2" in queue and queue.queued("a") == 3
    assert drain(queue) == [("a", "j1"), ("a", "j2"), ("a", "j3")]
    assert len(queue) == 0 and queue.owners() == [] and queue.queued("a") == 0


def test_round_robin_between_owners_with_equal_running_counts() -> None:
    queue: FairQueue[str] = FairQueue()
    for job in ("a1", "a2", "a3"):
        queue.push("a", job)
    for job in ("b1", "b2"):
        queue.push("b", job)
    queue.push(None, "n1")
    assert queue.owners() == ["a", "b", None]
    assert [job for _, job in drain(queue)] == ["a1", "b1", "n1", "a2", "b2", "a3"]


def test_an_owner_who_was_just_served_does_not_jump_ahead_by_requeueing() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "a1")
    queue.push("b", "b1")
    queue.push("b", "b2")
    assert queue.pop({}, max_running_per_owner=5) == ("a", "a1")
    queue.push("a", "a2")  # a's queue emptied and refilled: b, served less recently, still goes first
    assert [job for _, job in drain(queue)] == ["b1", "a2", "b2"]


def test_owner_with_fewer_running_jobs_goes_first() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "a1")
    queue.push("b", "b1")
    assert queue.pop({"a": 2, "b": 1}, max_running_per_owner=5) == ("b", "b1")
    assert queue.pop({"a": 2, "b": 2}, max_running_per_owner=5) == ("a", "a1")


def test_owner_at_its_running_limit_is_skipped() -> None:
    """A key's long job holds its one slot: another key's job queued later starts meanwhile."""
    queue: FairQueue[str] = FairQueue()
    queue.push("long", "long-2")
    queue.push(None, "anon-1")
    queue.push("short", "short-1")
    running: dict[str | None, int] = {"long": 1}
    assert queue.pop(running, max_running_per_owner=1) == (None, "anon-1")
    running[None] = 1
    assert queue.pop(running, max_running_per_owner=1) == ("short", "short-1")
    running["short"] = 1
    assert queue.pop(running, max_running_per_owner=1) is None
    assert queue.pop({"long": 0}, max_running_per_owner=1) == ("long", "long-2")


def test_nothing_eligible_is_none() -> None:
    queue: FairQueue[str] = FairQueue()
    assert queue.pop({}, max_running_per_owner=1) is None
    queue.push("a", "a1")
    assert queue.pop({"a": 3}, max_running_per_owner=3) is None
    assert queue.pop({}, max_running_per_owner=0) is None
    assert "a1" in queue


def test_remove() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "a1")
    queue.push("a", "a2")
    queue.push("b", "b1")
    assert queue.remove("a1")
    assert not queue.remove("a1")
    assert not queue.remove("nope")
    assert "a1" not in queue and len(queue) == 2 and queue.queued("a") == 1
    assert queue.remove("b1")
    assert queue.owners() == ["a"]
    assert drain(queue) == [("a", "a2")]


def test_push_twice_is_an_error() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "a1")
    with pytest.raises(ValueError, match="already queued"):
        queue.push("b", "a1")
    assert queue.queued("b") == 0


# --- quotas --------------------------------------------------------------------------------------------


def test_check_quota_passes_within_limits() -> None:
    check_quota(owner_jobs=0, owner_pages=0, new_pages=10, max_jobs=1, max_pages=10)
    check_quota(owner_jobs=4, owner_pages=90, new_pages=10, max_jobs=5, max_pages=100)


def test_check_quota_jobs_limit() -> None:
    with pytest.raises(TooManyRequests) as info:
        check_quota(owner_jobs=5, owner_pages=5, new_pages=1, max_jobs=5, max_pages=100)
    assert info.value.message == (
        "this API key has 5 jobs queued or running (limit 5); retry when one finishes"
    )
    assert (info.value.status, info.value.retry_after_s) == (429, 30)


def test_check_quota_pages_limit() -> None:
    with pytest.raises(TooManyRequests, match=r"95 pages queued or running .* has 10 \(limit 100\)"):
        check_quota(owner_jobs=1, owner_pages=95, new_pages=10, max_jobs=5, max_pages=100)


def test_document_over_the_page_limit_alone_is_not_retryable() -> None:
    with pytest.raises(LimitExceeded, match="101 pages"):
        check_quota(owner_jobs=0, owner_pages=0, new_pages=101, max_jobs=5, max_pages=100)


def test_the_cli_makes_a_key_and_its_table_entry() -> None:
    from typer.testing import CliRunner

    from serve_app.cli import app

    result = CliRunner().invoke(app, ["new-key", "alice"])
    assert result.exit_code == 0, result.output
    key, entry = result.stdout.strip().splitlines()
    table = KeyTable.parse(entry)
    found = table.authenticate(f"Bearer {key}")
    assert found is not None and found.name == "alice"
    assert json.loads(entry) == {"alice": {"sha256": hash_key(key)}}
    bad = CliRunner().invoke(app, ["new-key", "not a name"])
    assert bad.exit_code != 0
