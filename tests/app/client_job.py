"""A separate Ray job that uses serve_app.client, and how the tests run and check it.

``python -m tests.app.client_job`` connects to the cluster in RAY_ADDRESS, calls every client function,
and prints one JSON line. ``run_as_separate_job`` starts it as its own process; ``check_report``
asserts on that line (used by tests/app and tests/cluster).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import ray

from serve_app import client
from serve_app.core.pdf import render_pdf
from serve_app.training.synth import generate_document
from tests.examples import DOG_WALKING, NINE_TITLES, PUBLIC_SPEAKING

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ray.init(address="auto", log_to_driver=False)
    job_id = ray.get_runtime_context().get_job_id()
    vectors = client.embed(["A man is walking his dog.", "Public speaking tips"])
    groups = client.cluster(NINE_TITLES)
    document = generate_document(seed=818_181, num_pages=2, dpi=72)
    refs = [ray.put(image) for image in render_pdf(document.pdf, dpi=72)]  # owned by this job
    regions = client.detect_pages(refs, points_per_pixel=1.0)
    analysis = client.analyze_pdf(document.pdf, cluster=True)
    print(
        json.dumps(
            {
                "job_id": job_id,
                "embed_shape": list(vectors.shape),
                "clusters": sorted(sorted(NINE_TITLES[i] for i in c.members) for c in groups.clusters),
                "regions_per_page": [len(r) for r in regions],
                "region_labels": sorted({r.label for page in regions for r in page}),
                "analysis_pages": [len(p.regions) for p in analysis.pages],
                "analysis_has_clusters": analysis.clusters is not None,
                "analysis_texts": sum(bool(r.text) for p in analysis.pages for r in p.regions),
            }
        )
    )
    ray.shutdown()


def run_as_separate_job(address: str, *, timeout_s: float) -> dict[str, Any]:
    """Run this module as another process (another Ray job) against ``address``; return its report."""
    env = os.environ | {"RAY_ADDRESS": address, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.app.client_job"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def check_report(report: dict[str, Any]) -> None:
    """Every client function answered correctly, from a job other than the caller's."""
    assert report["job_id"] != ray.get_runtime_context().get_job_id()  # really another job
    assert report["embed_shape"] == [2, 384]
    assert report["clusters"] == sorted([sorted(DOG_WALKING), sorted(PUBLIC_SPEAKING)])
    assert len(report["regions_per_page"]) == 2 and min(report["regions_per_page"]) > 0
    assert set(report["region_labels"]) <= {"text", "title", "list", "table", "figure"}
    assert len(report["analysis_pages"]) == 2 and min(report["analysis_pages"]) > 0
    assert report["analysis_has_clusters"] and report["analysis_texts"] > 0


if __name__ == "__main__":
    sys.exit(main())
