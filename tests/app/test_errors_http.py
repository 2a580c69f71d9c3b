"""Bad input gets a clear 4xx JSON error, never a 500 or a hang, and the service keeps serving."""

from __future__ import annotations

import httpx
import pytest

from tests.app.helpers import JSON, assert_error
from tests.examples import NINE_TITLES


@pytest.mark.parametrize("route", ["/v1/embed", "/v1/cluster"])
@pytest.mark.parametrize(
    ("content", "headers", "status", "code", "fragment"),
    [
        (b"{not json", JSON, 400, "malformed_body", "not valid JSON"),
        (b"", JSON, 400, "malformed_body", "empty"),
        (
            b'{"sentences": ["a"]}',
            {"content-type": "text/plain"},
            415,
            "unsupported_media_type",
            "text/plain",
        ),
        (b'{"sentences": ["a"]}', {}, 415, "unsupported_media_type", "none"),
        (b"{}", JSON, 422, "invalid_input", "sentences: Field required"),
        (b'{"sentences": []}', JSON, 422, "invalid_input", "at least 1 item"),
        (b'{"sentences": null}', JSON, 422, "invalid_input", "sentences"),
        (b'{"sentences": ["ok", 7]}', JSON, 422, "invalid_input", "sentences[1]"),
        (b'{"sentences": ["ok", ""]}', JSON, 422, "invalid_input", "sentences[1] is empty"),
        (b'{"sentences": ["ok", "   "]}', JSON, 422, "invalid_input", "sentences[1] is empty"),
        (b'["a", "b"]', JSON, 422, "invalid_input", "JSON object"),
        (b'{"sentences": ["a"], "extra": 1}', JSON, 422, "invalid_input", "extra"),
    ],
)
def test_bad_bodies(
    http: httpx.Client,
    route: str,
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    fragment: str,
) -> None:
    assert_error(http.post(route, content=content, headers=headers), status, code, fragment)


@pytest.mark.parametrize("route", ["/v1/embed", "/v1/cluster"])
def test_too_many_sentences(http: httpx.Client, route: str) -> None:
    response = http.post(route, json={"sentences": ["a"] * 10_001})
    assert_error(response, 413, "limit_exceeded", "10001 > limit 10000")


@pytest.mark.parametrize("route", ["/v1/embed", "/v1/cluster"])
def test_text_too_long(http: httpx.Client, route: str) -> None:
    response = http.post(route, json={"sentences": ["ok", "x" * 2_001]})
    assert_error(response, 413, "limit_exceeded", "sentences[1] is 2001 characters")


def test_body_too_large(http: httpx.Client) -> None:
    big = b'{"sentences": ["' + b"x" * (16 * 1024 * 1024) + b'"]}'
    assert_error(http.post("/v1/embed", content=big, headers=JSON), 413, "limit_exceeded", "limit")


def test_body_too_large_without_content_length(http: httpx.Client) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(17):
            yield b"x" * (1024 * 1024)

    assert_error(http.post("/v1/embed", content=chunks(), headers=JSON), 413, "limit_exceeded", "limit")


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"num_clusters": 10}, "exceeds the number of sentences"),
        ({"num_clusters": 0}, "num_clusters"),
        ({"num_clusters": 2.5}, "num_clusters"),
        ({"min_cluster_size": 0}, "min_cluster_size"),
        ({"distance_threshold": -1}, "distance_threshold"),
        ({"distance_threshold": "far"}, "distance_threshold"),
    ],
)
def test_bad_cluster_options(http: httpx.Client, options: dict[str, object], fragment: str) -> None:
    response = http.post("/v1/cluster", json={"sentences": NINE_TITLES, **options})
    assert_error(response, 422, "invalid_input", fragment)


def test_unknown_route_and_wrong_method_are_json(http: httpx.Client) -> None:
    assert_error(http.get("/v1/nothing"), 404, "not_found")
    wrong = http.get("/v1/cluster")
    assert_error(wrong, 405, "method_not_allowed", "POST")
    assert wrong.headers["allow"] == "POST"
    assert_error(http.put("/v1/jobs/" + "0" * 32), 405, "method_not_allowed")
    assert {"GET", "DELETE"} <= set(http.put("/v1/jobs/" + "0" * 32).headers["allow"].split(", "))
    assert_error(http.delete("/v1/jobs/" + "0" * 32), 404, "not_found")  # DELETE is a route: no such job


def test_service_still_serves_after_bad_input(http: httpx.Client) -> None:
    for _ in range(3):
        http.post("/v1/cluster", content=b"\x00\xff", headers=JSON)
    response = http.post("/v1/cluster", json={"sentences": NINE_TITLES})
    assert response.status_code == 200
    assert len(response.json()["clusters"]) == 2
