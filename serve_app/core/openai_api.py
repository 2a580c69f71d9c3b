"""OpenAI-compatible embeddings (``POST /v1/embeddings``): bodies and errors as OpenAI has them (no Ray).

Clients written for OpenAI (the official ``openai`` package, LangChain, LlamaIndex...) work unchanged with
``base_url=http://host:8000/v1``. Text only: OpenAI's token-array inputs are refused with a clear message.
"""

from __future__ import annotations

import base64
from typing import Any, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from serve_app.core.errors import ServeAppError
from serve_app.core.schemas import JsonInt


class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request. ``model`` must name the served model (an unknown name is a 404 that
    says which); ``user`` is accepted and ignored."""

    model_config = ConfigDict(extra="forbid")

    input: StrictStr | list[StrictStr] = Field(description="A text, or a non-empty list of texts.")
    model: StrictStr = Field(description="The embedding model, e.g. all-MiniLM-L6-v2.")
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="float: lists of numbers; base64: little-endian float32 bytes."
    )
    dimensions: JsonInt | None = Field(
        default=None, description="Must be the model's dimension (384) if given: vectors are not truncated."
    )
    user: StrictStr | None = Field(default=None, description="Accepted for compatibility; not used.")

    @field_validator("input", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("input must not be empty")
        if isinstance(value, list) and any(isinstance(x, int | list) for x in value):
            raise ValueError("token arrays are not supported: send the texts")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def embedding_model_names(name: str) -> list[str]:
    """The ``model`` values accepted for the served model: its name, and its Hugging Face id."""
    return [name, f"sentence-transformers/{name}"]


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


def vector_rows(vectors: np.ndarray, encoding_format: str) -> list[list[float]] | list[str]:
    """Rows as JSON lists of numbers, or (``base64``) as base64 of their little-endian float32 bytes:
    a quarter of the characters, and no float formatting in the ingress."""
    rows = np.asarray(vectors, dtype="<f4")
    if encoding_format == "base64":
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in rows]
    numbers: list[list[float]] = rows.tolist()
    return numbers


def embeddings_response(
    vectors: np.ndarray, *, model: str, tokens: int, encoding_format: str
) -> EmbeddingsResponse:
    """OpenAI's answer for ``vectors`` (one row per input, in order)."""
    rows = vector_rows(vectors, encoding_format)
    data = [Embedding(index=i, embedding=cast("list[float] | str", row)) for i, row in enumerate(rows)]
    return EmbeddingsResponse(data=data, model=model, usage=Usage(prompt_tokens=tokens, total_tokens=tokens))


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str


class OpenAIErrorResponse(BaseModel):
    """OpenAI's error shape; ``code`` and ``message`` are the ones every other route uses."""

    error: OpenAIErrorDetail

    @classmethod
    def of(cls, exc: ServeAppError, *, param: str | None = None) -> OpenAIErrorResponse:
        kind = "invalid_request_error" if exc.status < 500 else "server_error"
        return cls(error=OpenAIErrorDetail(message=exc.message, type=kind, param=param, code=exc.code))
