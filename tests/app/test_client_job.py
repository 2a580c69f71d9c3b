"""serve_app.client from another Ray job: a separate Python process connects to the running cluster."""

from __future__ import annotations

import ray

from tests.app.client_job import check_report, run_as_separate_job


def test_every_client_function_from_a_separate_job(serve_url: str) -> None:
    check_report(run_as_separate_job(ray.get_runtime_context().gcs_address, timeout_s=300))
