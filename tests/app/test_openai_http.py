"""POST /v1/embeddings with the official ``openai`` client pointed at the service (real HTTP)."""

from __future__ import annotations

import httpx
import numpy as np
import openai
import pytest
from transformers import AutoTokenizer

from serve_app.models.embedding import default_model_path
from tests.examples import NINE_TITLES, assert_same_embeddings


@pytest.fixture(scope="module")
def client(serve_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{serve_url}/v1", api_key="not-needed", max_retries=0, timeout=120)


def our_vectors(http: httpx.Client, texts: list[str]) -> np.ndarray:
    response = http.post("/v1/embed", json={"sentences": texts})
    assert response.status_code == 200, response.text
    return np.array(response.json()["embeddings"], dtype=np.float32)


def test_the_official_client_gets_our_embeddings(client: openai.OpenAI, http: httpx.Client) -> None:
    expected = our_vectors(http, NINE_TITLES)
    # The client asks for base64 by default and decodes it itself.
    answer = client.embeddings.create(model="all-MiniLM-L6-v2", input=NINE_TITLES)
    assert answer.object == "list" and answer.model == "all-MiniLM-L6-v2"
    assert [d.index for d in answer.data] == list(range(len(NINE_TITLES)))
    np.testing.assert_allclose(np.array([d.embedding for d in answer.data]), expected, atol=1e-6)
    as_floats = client.embeddings.create(
        model="sentence-transformers/all-MiniLM-L6-v2", input=NINE_TITLES[0], encoding_format="float"
    )
    assert len(as_floats.data) == 1
    assert_same_embeddings([as_floats.data[0].embedding], expected[:1])  # another batch
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()), local_files_only=True)
    tokens = sum(len(ids) for ids in tokenizer(NINE_TITLES, truncation=True, max_length=256)["input_ids"])
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == tokens


def test_errors_come_back_as_openai_errors(client: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="text-embedding-3-small", input="a dog")
    assert "use 'all-MiniLM-L6-v2'" in missing.value.message
    body = missing.value.body
    assert isinstance(body, dict) and body["code"] == "model_not_found" and body["param"] == "model"
    with pytest.raises(openai.UnprocessableEntityError, match="input\\[1\\] is empty or whitespace only"):
        client.embeddings.create(model="all-MiniLM-L6-v2", input=["a dog", "  "])
    with pytest.raises(openai.UnprocessableEntityError, match="dimensions must be 384"):
        client.embeddings.create(model="all-MiniLM-L6-v2", input="a dog", dimensions=128)
    tokens = http.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": [[101, 102]]})
    assert tokens.status_code == 422
    assert tokens.json()["error"]["type"] == "invalid_request_error"
    assert "token arrays are not supported" in tokens.json()["error"]["message"]
    too_long = http.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "x" * 2001})
    assert too_long.status_code == 413 and too_long.json()["error"]["code"] == "limit_exceeded"
    not_json = http.post("/v1/embeddings", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "malformed_body"
