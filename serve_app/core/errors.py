"""Typed errors raised by the pure logic, each with its HTTP status: the one table of error codes.

Only the ingress turns them into HTTP answers (``{"error": {"code", "message"}}`` with ``status``);
the benchmark baseline and the OpenAPI document read the same table (``HTTP_ERRORS``).
"""

from __future__ import annotations

from typing import ClassVar


class ServeAppError(Exception):
    """Base class: a stable machine-readable ``code``, its HTTP ``status``, and an actionable message."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[type[ServeAppError], tuple[str]]:
        # Keeps the exception picklable across Ray handles with its message intact.
        return (type(self), (self.message,))


class MalformedBody(ServeAppError):
    """The body could not be decoded at all (for example invalid JSON, or an empty body)."""

    code = "malformed_body"
    status = 400


class NotFound(ServeAppError):
    """The requested route or resource does not exist."""

    code = "not_found"
    status = 404


class ModelNotFound(ServeAppError):
    """No served model has this name (``/v1/embeddings``'s ``model``); the message lists the names."""

    code = "model_not_found"
    status = 404


class MethodNotAllowed(ServeAppError):
    """The route exists but not with this HTTP method (the ``Allow`` header lists the methods it has)."""

    code = "method_not_allowed"
    status = 405


class JobNotFinished(ServeAppError):
    """The job (or the asked page of it) is not done yet; poll its state and retry."""

    code = "job_not_finished"
    status = 409


class JobFailed(ServeAppError):
    """The job failed; the message says why."""

    code = "job_failed"
    status = 409


class JobCancelled(ServeAppError):
    """The job was cancelled (DELETE /v1/jobs/{id}); it has no result."""

    code = "job_cancelled"
    status = 409


class LimitExceeded(ServeAppError):
    """The request is larger than a configured limit (body bytes, item count, text length, pages, pixels)."""

    code = "limit_exceeded"
    status = 413


class UnsupportedMediaType(ServeAppError):
    """The request's Content-Type is not one the route accepts."""

    code = "unsupported_media_type"
    status = 415


class InvalidInput(ServeAppError):
    """The body decoded but its content is wrong (missing field, wrong type, empty text, bad PDF...)."""

    code = "invalid_input"
    status = 422


class ModelUnavailable(ServeAppError):
    """A model could not be loaded or is not ready to serve."""

    code = "model_unavailable"
    status = 503


class Unavailable(ServeAppError):
    """The service is overloaded or a replica is starting or was lost; retry shortly."""

    code = "unavailable"
    status = 503


class InternalError(ServeAppError):
    """An unexpected error; the service logs have the details."""


HTTP_ERRORS: tuple[type[ServeAppError], ...] = (
    MalformedBody,
    NotFound,
    ModelNotFound,
    MethodNotAllowed,
    JobNotFinished,
    JobFailed,
    JobCancelled,
    LimitExceeded,
    UnsupportedMediaType,
    InvalidInput,
    ModelUnavailable,
    Unavailable,
    InternalError,
)


def describe_status(status: int) -> str:
    """What an error answer with ``status`` means, from the docstrings of the errors that use it."""
    return " / ".join(
        f"{e.code}: {(e.__doc__ or '').strip().splitlines()[0]}" for e in HTTP_ERRORS if e.status == status
    )


class ConfigError(ValueError):
    """A configuration (``configs/serve.yaml`` args or ``user_config``) is invalid: the deploy fails."""
