"""Request and response bodies of the HTTP API, and their parsing with clear typed errors."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from serve_app.core.clustering import Clustering
from serve_app.core.errors import (
    InvalidInput,
    LimitExceeded,
    MalformedBody,
    ServeAppError,
    UnsupportedMediaType,
)


def _whole_number(value: Any) -> Any:
    """JSON Schema counts 2.0 as an integer: accept it as 2 (strings and 2.5 stay errors)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A JSON integer: 3 or 3.0, not "3", 3.5 or true.
JsonInt = Annotated[StrictInt, BeforeValidator(_whole_number)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbedRequest(_Body):
    """Sentences to embed."""

    sentences: list[StrictStr] = Field(min_length=1, description="Non-empty texts, one embedding each.")
    encoding_format: Literal["float", "base64"] = Field(
        default="float",
        description="float: lists of numbers; base64: each vector as base64 of little-endian float32 bytes.",
    )


class ClusterRequest(_Body):
    """Sentences to group by meaning."""

    sentences: list[StrictStr] = Field(min_length=1, description="Non-empty texts to group.")
    num_clusters: Annotated[JsonInt, Field(ge=1)] | None = Field(
        default=None,
        description=(
            "Cut into at most this many clusters instead of using the distance threshold; "
            "at most the number of sentences."
        ),
    )
    min_cluster_size: Annotated[JsonInt, Field(ge=1)] = Field(
        default=1, description="Clusters smaller than this are listed as unclustered."
    )
    distance_threshold: float | None = Field(
        default=None,
        gt=0.0,
        le=2.0,
        description="Cosine distance at which merging stops (server default if null).",
    )

    @model_validator(mode="after")
    def _clusters_fit(self) -> ClusterRequest:
        if self.num_clusters is not None and self.num_clusters > len(self.sentences):
            raise ValueError(
                f"num_clusters ({self.num_clusters}) exceeds the number of sentences ({len(self.sentences)})"
            )
        return self


class EmbedResponse(_Body):
    """L2-normalised float32 embeddings, in request order."""

    embeddings: list[list[float]] | list[str] = Field(
        description="One per sentence: numbers, or base64 strings when encoding_format is base64."
    )
    dimension: int
    count: int


class Member(_Body):
    """A sentence by its position in the request."""

    index: int
    text: str


class ClusterBody(_Body):
    """One cluster: its size, the member closest to the centroid, and all members in request order."""

    size: int
    representative: Member
    members: list[Member]


class ClusterResponse(_Body):
    """Clusters by size, largest first; members of clusters below min_cluster_size are unclustered."""

    clusters: list[ClusterBody]
    unclustered: list[Member]


class ErrorDetail(_Body):
    code: str
    message: str


class ErrorResponse(_Body):
    """Every error answer has this shape."""

    error: ErrorDetail

    @classmethod
    def of(cls, exc: ServeAppError) -> ErrorResponse:
        return cls(error=ErrorDetail(code=exc.code, message=exc.message))


def cluster_response(sentences: list[str], clustering: Clustering) -> ClusterResponse:
    """The HTTP answer for a clustering of ``sentences`` (row indices become index + text)."""

    def member(i: int) -> Member:
        return Member(index=i, text=sentences[i])

    return ClusterResponse(
        clusters=[
            ClusterBody(
                size=len(c.members),
                representative=member(c.representative),
                members=[member(i) for i in c.members],
            )
            for c in clustering.clusters
        ],
        unclustered=[member(i) for i in clustering.unclustered],
    )


class HealthResponse(_Body):
    status: str


class ReadyResponse(_Body):
    # ready | busy (a queue is full: excess requests are refused) | degraded (job store down) | not_ready
    status: str
    deployments: dict[str, str]
    # The job store: "ok", or "down: <why>" (jobs wait for it, store_retry_s); None when not known.
    store: str | None = None


B = TypeVar("B", bound=BaseModel)


def check_json_content_type(content_type: str | None) -> None:
    """Accept ``application/json`` (any charset parameter) or a ``+json`` suffix type."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        shown = content_type or "none"
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {shown}")


PDF_MEDIA_TYPES = ("application/pdf", "multipart/form-data")


def check_pdf_content_type(content_type: str | None) -> str:
    """Accept a PDF body (``application/pdf``) or a form upload; return the media type."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in PDF_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"send the PDF as Content-Type application/pdf or as multipart/form-data with a file part "
            f"named 'file', got {content_type or 'none'}"
        )
    return media_type


def parse_json_body(model: type[B], body: bytes) -> B:
    """Decode ``body`` as JSON and validate it against ``model``."""
    if not body.strip():
        raise MalformedBody("request body is empty; send a JSON object")
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedBody(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"request body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc)) from None


# A text is blank when it has only these characters: the whitespace of ECMAScript's \s, the regex dialect
# of JSON Schema. Written as one explicit class so that Python and the OpenAPI document (``pattern``)
# agree exactly (Python's own \s would also count control characters such as \x1c-\x1f and \x85).
NOT_BLANK = r"[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_NOT_BLANK = re.compile(NOT_BLANK)


def check_sentences(
    sentences: list[str], *, max_sentences: int, max_text_chars: int, field: str = "sentences"
) -> None:
    """Reject empty or whitespace-only texts and enforce the count and length limits (``field`` names the
    list in the messages)."""
    if len(sentences) > max_sentences:
        raise LimitExceeded(f"too many {field}: {len(sentences)} > limit {max_sentences}")
    for i, text in enumerate(sentences):
        if not _NOT_BLANK.search(text):
            raise InvalidInput(f"{field}[{i}] is empty or whitespace only")
        if len(text) > max_text_chars:
            raise LimitExceeded(f"{field}[{i}] is {len(text)} characters long; the limit is {max_text_chars}")


# Plainer words for the pydantic errors people hit most in query strings.
_PLAIN = {
    "int_parsing": "is not a number",
    "float_parsing": "is not a number",
    "int_from_float": "is not a whole number",
    "bool_parsing": "must be true or false",
}


def describe_errors(errors: Sequence[Mapping[str, Any]], *, known: Sequence[str] = (), limit: int = 5) -> str:
    """One line for pydantic (or FastAPI) validation errors: ``where: what`` for at most ``limit`` errors.

    The one formatter for request bodies, query parameters and settings. A location starting with
    ``"query"`` names a URL query parameter (``dpi='abc' is not a number``); ``known`` lists the
    parameters a route has, named when an unknown one is given.
    """
    parts = []
    for err in errors[:limit]:
        loc = [p for p in err.get("loc", ()) if p != "body"]
        if loc and loc[0] == "query":
            name = ".".join(str(p) for p in loc[1:])
            if err.get("type") == "extra_forbidden":
                parts.append(f"unknown query parameter {name!r}; known: {', '.join(known)}")
            elif err.get("type") in _PLAIN:
                parts.append(f"{name}={err.get('input')!r} {_PLAIN[err['type']]}")
            else:
                parts.append(f"{name}: {err['msg']}")
            continue
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        parts.append(f"{where or 'body'}: {err['msg']}")
    more = len(errors) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def describe_validation_error(exc: ValidationError) -> str:
    return describe_errors(exc.errors())
