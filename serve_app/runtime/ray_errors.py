"""How failures look when they cross Ray: unwrap task errors, and tell lost replicas from bad input."""

from __future__ import annotations

from ray.exceptions import ObjectLostError, RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

# A call failed because the replica went away or is busy, not because its input was bad: retry it.
RETRYABLE: tuple[type[Exception], ...] = (RayActorError, DeploymentUnavailableError, BackPressureError)
# What a client should retry (HTTP 503): the above, or an intermediate result lost with its node.
UNAVAILABLE: tuple[type[Exception], ...] = (*RETRYABLE, ObjectLostError)


def root_cause(exc: BaseException) -> BaseException:
    """The user exception inside (possibly nested) ``RayTaskError``s and exception groups."""
    while True:
        if isinstance(exc, RayTaskError) and exc.cause is not None and exc.cause is not exc:
            exc = exc.cause
        elif isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        else:
            return exc
