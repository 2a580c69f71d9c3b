"""Bad PDFs and bad options get a clear 4xx JSON error on /v1/detect and /v1/jobs; nothing breaks."""

from __future__ import annotations

import httpx
import pytest

from tests import pdfs
from tests.app.helpers import PDF, assert_error

ROUTES = ["/v1/detect", "/v1/jobs"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("content", "status", "code", "fragment"),
    [
        (pdfs.not_a_pdf(), 422, "invalid_input", "not a PDF"),
        (b"%PDF-1.7\n", 422, "invalid_input", ""),
        (pdfs.truncated_pdf(), 422, "invalid_input", "damaged"),
        (pdfs.encrypted_pdf(), 422, "invalid_input", "encrypted"),
        (pdfs.zero_page_pdf(), 422, "invalid_input", "no pages"),
        (pdfs.huge_page_pdf(), 422, "invalid_input", "14400"),
        (b"", 400, "malformed_body", "empty"),
    ],
)
def test_bad_pdfs(
    http: httpx.Client, route: str, content: bytes, status: int, code: str, fragment: str
) -> None:
    assert_error(http.post(route, content=content, headers=PDF), status, code, fragment)


def test_too_many_pages_for_a_synchronous_answer(http: httpx.Client) -> None:
    response = http.post("/v1/detect", content=pdfs.text_pdf(21, lines_per_page=1), headers=PDF)
    assert_error(response, 413, "limit_exceeded", "/v1/jobs")


def test_too_many_pixels(http: httpx.Client) -> None:
    # A legal 14,000 x 14,000 pt page is 196 M pixels at 72 dpi: over the 20 M pixel limit.
    import pymupdf

    with pymupdf.open() as doc:
        doc.new_page(width=14_000, height=14_000)
        big = doc.tobytes()
    assert_error(http.post("/v1/jobs", content=big, headers=PDF), 413, "limit_exceeded", "dpi")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("dpi=1000", "dpi"),
        ("dpi=abc", "not a number"),
        ("score_threshold=2", "score_threshold"),
        ("cluster=maybe", "true or false"),
        ("dpj=72", "unknown query parameter 'dpj'"),
    ],
)
def test_bad_options(http: httpx.Client, route: str, query: str, fragment: str) -> None:
    response = http.post(f"{route}?{query}", content=pdfs.text_pdf(1), headers=PDF)
    assert_error(response, 422, "invalid_input", fragment)


@pytest.mark.parametrize("route", ROUTES)
def test_wrong_content_type_and_missing_file_part(http: httpx.Client, route: str) -> None:
    pdf = pdfs.text_pdf(1)
    assert_error(http.post(route, content=pdf, headers={"content-type": "text/plain"}), 415,
                 "unsupported_media_type", "application/pdf")  # fmt: skip
    assert_error(http.post(route, files={"upload": ("a.pdf", pdf)}), 422, "invalid_input", '"file"')
    garbage = {"content-type": "multipart/form-data; boundary=zzz"}
    assert_error(http.post(route, content=b"--x\r\nnot multipart", headers=garbage), 400, "malformed_body",
                 "cannot be parsed")  # fmt: skip


def test_upload_too_large(http: httpx.Client) -> None:
    def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: the limit applies while streaming
        for _ in range(65):
            yield b"%PDF-" + b"x" * (1024 * 1024 - 5)

    assert_error(http.post("/v1/detect", content=chunks(), headers=PDF), 413, "limit_exceeded", "limit")


def test_service_still_serves_after_bad_pdfs(http: httpx.Client) -> None:
    for bad in (pdfs.not_a_pdf(), pdfs.truncated_pdf(), pdfs.encrypted_pdf()):
        assert http.post("/v1/detect", content=bad, headers=PDF).status_code == 422
    assert http.get("/healthz").status_code == 200
    response = http.post("/v1/detect", content=pdfs.text_pdf(1), headers=PDF)
    assert response.status_code == 200 and response.json()["page_count"] == 1
