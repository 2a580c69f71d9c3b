"""The error boundary's mapping (pure: builds responses, starts nothing)."""

from __future__ import annotations

import json
import pickle

import pytest
from ray.exceptions import RayTaskError

from serve_app.core import errors
from serve_app.deployments.ingress import error_response


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (errors.MalformedBody("m"), 400, "malformed_body"),
        (errors.NotFound("m"), 404, "not_found"),
        (errors.LimitExceeded("m"), 413, "limit_exceeded"),
        (errors.UnsupportedMediaType("m"), 415, "unsupported_media_type"),
        (errors.InvalidInput("m"), 422, "invalid_input"),
        (errors.ModelUnavailable("m"), 503, "model_unavailable"),
        (errors.MethodNotAllowed("m"), 405, "method_not_allowed"),
        (errors.JobNotFinished("m"), 409, "job_not_finished"),
        (errors.JobFailed("m"), 409, "job_failed"),
        (errors.Unavailable("m"), 503, "unavailable"),
    ],
)
def test_typed_errors_map_to_status_and_code(exc: errors.ServeAppError, status: int, code: str) -> None:
    response = error_response(exc)
    assert response.status_code == status
    assert json.loads(bytes(response.body)) == {"error": {"code": code, "message": "m"}}


def test_error_from_another_deployment_is_unwrapped() -> None:
    wrapped = RayTaskError("cluster", "traceback text", errors.InvalidInput("num_clusters too big"))
    response = error_response(wrapped)
    assert response.status_code == 422
    assert json.loads(bytes(response.body))["error"]["message"] == "num_clusters too big"


def test_unexpected_errors_are_500_without_internals() -> None:
    response = error_response(KeyError("secret"))
    assert response.status_code == 500
    assert "secret" not in bytes(response.body).decode()


def test_errors_survive_pickling() -> None:
    copy = pickle.loads(pickle.dumps(errors.LimitExceeded("too big")))
    assert isinstance(copy, errors.LimitExceeded)
    assert copy.message == "too big"


def test_the_error_table_is_complete_and_unambiguous() -> None:
    table = errors.HTTP_ERRORS
    assert len({e.code for e in table}) == len(table)
    subclasses: set[type[errors.ServeAppError]] = set()
    todo = [errors.ServeAppError]
    while todo:  # every descendant, not only the direct subclasses
        for sub in todo.pop().__subclasses__():
            subclasses.add(sub)
            todo.append(sub)
    assert subclasses == set(table)  # every error class is in the table the docs and OpenAPI read
    for error in table:
        assert 400 <= error.status <= 599 and errors.describe_status(error.status)


def test_ray_overload_and_lost_replicas_are_503_unavailable() -> None:
    from ray.exceptions import RayActorError

    response = error_response(RayActorError())
    assert response.status_code == 503
    assert json.loads(bytes(response.body))["error"]["code"] == "unavailable"
