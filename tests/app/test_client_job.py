"""serve_app.client from another Ray job: a separate Python process connects to the running cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ray

from tests.examples import DOG_WALKING, PUBLIC_SPEAKING

ROOT = Path(__file__).resolve().parents[2]


def test_every_client_function_from_a_separate_job(serve_url: str) -> None:
    env = os.environ | {"RAY_ADDRESS": ray.get_runtime_context().gcs_address, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.app.client_job"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["job_id"] != ray.get_runtime_context().get_job_id()  # really another job
    assert report["embed_shape"] == [2, 384]
    assert report["clusters"] == sorted([sorted(DOG_WALKING), sorted(PUBLIC_SPEAKING)])
    assert len(report["regions_per_page"]) == 2 and min(report["regions_per_page"]) > 0
    assert set(report["region_labels"]) <= {"text", "title", "list", "table", "figure"}
    assert len(report["analysis_pages"]) == 2 and min(report["analysis_pages"]) > 0
    assert report["analysis_has_clusters"] and report["analysis_texts"] > 0
