from __future__ import annotations

import pytest

from serve_app.core.errors import InvalidInput, LimitExceeded, MalformedBody, UnsupportedMediaType
from serve_app.core.schemas import (
    ClusterRequest,
    EmbedRequest,
    check_json_content_type,
    check_sentences,
    parse_json_body,
)


@pytest.mark.parametrize(
    "value",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"],
)
def test_json_content_types_accepted(value: str) -> None:
    check_json_content_type(value)


@pytest.mark.parametrize(
    "value", [None, "", "text/plain", "multipart/form-data; boundary=x", "application/jsonx"]
)
def test_other_content_types_rejected(value: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        check_json_content_type(value)


def test_valid_body_parses() -> None:
    body = parse_json_body(ClusterRequest, b'{"sentences": ["a", "b"], "num_clusters": 2}')
    assert body.sentences == ["a", "b"]
    assert body.num_clusters == 2
    assert body.min_cluster_size == 1


@pytest.mark.parametrize(
    ("raw", "error", "fragment"),
    [
        (b"", MalformedBody, "empty"),
        (b"{", MalformedBody, "not valid JSON"),
        (b"\xff\xfe", MalformedBody, "not valid JSON"),
        (b"[1, 2]", InvalidInput, "JSON object"),
        (b"{}", InvalidInput, "sentences: Field required"),
        (b'{"sentences": []}', InvalidInput, "at least 1 item"),
        (b'{"sentences": "abc"}', InvalidInput, "valid list"),
        (b'{"sentences": ["ok", 3]}', InvalidInput, "sentences[1]"),
        (b'{"sentences": ["ok"], "sentence": []}', InvalidInput, "Extra inputs"),
    ],
)
def test_bad_bodies(raw: bytes, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        parse_json_body(EmbedRequest, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"sentences": ["a"], "num_clusters": 0}',
        b'{"sentences": ["a"], "num_clusters": "2"}',
        b'{"sentences": ["a"], "min_cluster_size": 0}',
        b'{"sentences": ["a"], "distance_threshold": 3}',
        b'{"sentences": ["a", "b"], "num_clusters": 1.5}',
        b'{"sentences": ["a", "b"], "num_clusters": true}',
        b'{"sentences": ["a", "b"], "num_clusters": 3}',
    ],
)
def test_bad_cluster_options(raw: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_json_body(ClusterRequest, raw)


def test_whole_numbers_written_as_floats_are_integers() -> None:
    # JSON Schema's "integer" admits 2.0: the published schema must not promise more than the service takes.
    body = parse_json_body(
        ClusterRequest, b'{"sentences": ["a", "b"], "num_clusters": 2.0, "min_cluster_size": 1.0}'
    )
    assert (body.num_clusters, body.min_cluster_size) == (2, 1)
    assert isinstance(body.num_clusters, int)


def test_check_sentences_limits() -> None:
    check_sentences(["a", "b"], max_sentences=2, max_text_chars=1)
    with pytest.raises(LimitExceeded, match="too many sentences: 3 > limit 2"):
        check_sentences(["a", "b", "c"], max_sentences=2, max_text_chars=10)
    with pytest.raises(LimitExceeded, match=r"sentences\[1\] is 4 characters"):
        check_sentences(["a", "abcd"], max_sentences=5, max_text_chars=3)
    with pytest.raises(InvalidInput, match=r"sentences\[0\] is empty"):
        check_sentences(["  \n"], max_sentences=5, max_text_chars=3)


def test_blank_means_what_the_published_pattern_means() -> None:
    # JSON Schema patterns are ECMAScript regexes, whose \s lacks Python's control characters: a text
    # the OpenAPI document allows must pass, one it forbids must fail.
    for text in ("\x1d", "\x85", "-", "\u00adx"):
        check_sentences([text], max_sentences=5, max_text_chars=10)
    for text in (" ", "\t\n", "\u3000\u00a0", "\ufeff"):
        with pytest.raises(InvalidInput, match="empty or whitespace only"):
            check_sentences([text], max_sentences=5, max_text_chars=10)
