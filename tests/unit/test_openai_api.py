"""OpenAI-compatible embeddings bodies (no Ray): what the official client sends is parsed, answers decode
as the client decodes them, errors have OpenAI's shape."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from serve_app.core.errors import InvalidInput, ModelNotFound, Unavailable
from serve_app.core.openai_api import (
    EmbeddingsRequest,
    OpenAIErrorResponse,
    embedding_model_names,
    embeddings_response,
)
from serve_app.core.schemas import parse_json_body


def test_input_is_a_text_or_a_list_of_texts() -> None:
    one = parse_json_body(EmbeddingsRequest, b'{"input": "a dog", "model": "m"}')
    assert one.texts() == ["a dog"] and one.encoding_format == "float"
    many = parse_json_body(
        EmbeddingsRequest,
        b'{"input": ["a", "b"], "model": "m", "encoding_format": "base64", "user": "u", "dimensions": 384}',
    )
    assert many.texts() == ["a", "b"] and many.encoding_format == "base64" and many.dimensions == 384


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"input": [], "model": "m"}', "input must not be empty"),
        (b'{"input": [1, 2, 3], "model": "m"}', "token arrays are not supported"),
        (b'{"input": [[1, 2]], "model": "m"}', "token arrays are not supported"),
        (b'{"input": "a"}', "model"),
        (b'{"input": "a", "model": "m", "encoding_format": "int8"}', "encoding_format"),
        (b'{"input": "a", "model": "m", "temperature": 1}', "temperature"),
    ],
)
def test_bad_requests_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_json_body(EmbeddingsRequest, body)


def test_answers_decode_as_openai_clients_decode_them() -> None:
    vectors = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    as_floats = embeddings_response(vectors, model="m", tokens=7, encoding_format="float")
    assert as_floats.object == "list" and as_floats.model == "m"
    assert as_floats.usage.prompt_tokens == as_floats.usage.total_tokens == 7
    assert [d.index for d in as_floats.data] == [0, 1, 2] and {d.object for d in as_floats.data} == {
        "embedding"
    }
    np.testing.assert_array_equal(np.array([d.embedding for d in as_floats.data], dtype=np.float32), vectors)
    as_base64 = embeddings_response(vectors, model="m", tokens=7, encoding_format="base64")
    decoded = [np.frombuffer(base64.b64decode(str(d.embedding)), dtype="<f4") for d in as_base64.data]
    np.testing.assert_array_equal(np.stack(decoded), vectors)


def test_errors_have_openais_shape_with_our_code_and_message() -> None:
    missing = OpenAIErrorResponse.of(ModelNotFound("no such model"), param="model").model_dump()
    assert missing == {
        "error": {
            "message": "no such model",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    assert OpenAIErrorResponse.of(Unavailable("busy")).error.type == "server_error"
    assert embedding_model_names("all-MiniLM-L6-v2") == [
        "all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
    ]
