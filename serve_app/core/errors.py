"""Typed errors raised by the pure logic; the ingress is the only place that maps them to HTTP."""

from __future__ import annotations

from typing import ClassVar


class ServeAppError(Exception):
    """Base class: a stable machine-readable ``code`` plus an actionable message."""

    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[type[ServeAppError], tuple[str]]:
        # Keeps the exception picklable across Ray handles with its message intact.
        return (type(self), (self.message,))


class MalformedBody(ServeAppError):
    """The body could not be decoded at all (for example invalid JSON)."""

    code = "malformed_body"


class UnsupportedMediaType(ServeAppError):
    """The request's Content-Type is not one the route accepts."""

    code = "unsupported_media_type"


class InvalidInput(ServeAppError):
    """The body decoded but its content is wrong (missing field, wrong type, empty text...)."""

    code = "invalid_input"


class LimitExceeded(ServeAppError):
    """The request is larger than a configured limit (body bytes, item count, text length)."""

    code = "limit_exceeded"


class NotFound(ServeAppError):
    """The requested route or resource does not exist."""

    code = "not_found"


class ModelUnavailable(ServeAppError):
    """A model could not be loaded or is not ready to serve."""

    code = "model_unavailable"


class JobNotFinished(ServeAppError):
    """The job (or the asked page of it) is not done yet; poll its state and retry."""

    code = "job_not_finished"


class JobFailed(ServeAppError):
    """The job failed; the message says why."""

    code = "job_failed"
