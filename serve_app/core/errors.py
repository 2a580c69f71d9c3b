"""Typed errors raised by the pure logic, each with its HTTP status: the one table of error codes.

Only the ingress turns them into HTTP answers (``{"error": {"code", "message"}}`` with ``status``);
the benchmark baseline and the OpenAPI document read the same table (``HTTP_ERRORS``).
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServeAppError(Exception):
    """Base class: a stable machine-readable ``code``, its HTTP ``status``, and an actionable message."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    # Seconds a client should wait before retrying (the ``Retry-After`` header); None: not retryable as is.
    retry_after_s: int | None = None

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retry_after_s is not None:
            self.retry_after_s = max(1, round(retry_after_s))

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the exception picklable across Ray handles with its message and retry hint intact.
        return (_rebuild, (type(self), self.message, self.retry_after_s))


def _rebuild(cls: type[ServeAppError], message: str, retry_after_s: int | None) -> ServeAppError:
    error = cls(message)
    error.retry_after_s = retry_after_s
    return error


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


class Unauthorized(ServeAppError):
    """No API key, or one the service does not know (send ``Authorization: Bearer <key>``)."""

    code = "unauthorized"
    status = 401


class Forbidden(ServeAppError):
    """The API key is known but may not be used (disabled)."""

    code = "forbidden"
    status = 403


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


class TooManyRequests(ServeAppError):
    """This API key has as many jobs or pages queued and running as it may; retry after ``Retry-After``."""

    code = "rate_limited"
    status = 429
    retry_after_s = 30


class ModelUnavailable(ServeAppError):
    """A model could not be loaded or is not ready to serve."""

    code = "model_unavailable"
    status = 503


class Unavailable(ServeAppError):
    """The service is overloaded or a replica is starting or was lost; retry after ``Retry-After``."""

    code = "unavailable"
    status = 503
    retry_after_s = 1


class StoreUnavailable(Unavailable):
    """The job store (S3 or a directory) cannot be reached now; retry after ``Retry-After``."""

    code = "store_unavailable"
    retry_after_s = 5


class Timeout(ServeAppError):
    """The request took longer than the service's time limit for it (``request_timeout_s``)."""

    code = "timeout"
    status = 504


class InternalError(ServeAppError):
    """An unexpected error; the service logs have the details."""


HTTP_ERRORS: tuple[type[ServeAppError], ...] = (
    MalformedBody,
    Unauthorized,
    Forbidden,
    NotFound,
    ModelNotFound,
    MethodNotAllowed,
    JobNotFinished,
    JobFailed,
    JobCancelled,
    LimitExceeded,
    UnsupportedMediaType,
    InvalidInput,
    TooManyRequests,
    ModelUnavailable,
    Unavailable,
    StoreUnavailable,
    Timeout,
    InternalError,
)


def describe_status(status: int) -> str:
    """What an error answer with ``status`` means, from the docstrings of the errors that use it."""
    return " / ".join(
        f"{e.code}: {(e.__doc__ or '').strip().splitlines()[0]}" for e in HTTP_ERRORS if e.status == status
    )


class ConfigError(ValueError):
    """A configuration (``configs/serve.yaml`` args or ``user_config``) is invalid: the deploy fails."""
