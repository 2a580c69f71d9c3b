"""A separate Ray job that uses serve_app.client (run by test_client_job.py as its own process).

Connects to the cluster in RAY_ADDRESS, calls every client function, and prints one JSON line.
"""

from __future__ import annotations

import json
import sys

import ray

from serve_app import client
from serve_app.core.pdf import render_pdf
from serve_app.training.synth import generate_document
from tests.examples import NINE_TITLES


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


if __name__ == "__main__":
    sys.exit(main())
