"""The deployments' own metrics reach the Prometheus endpoint of the local Ray (docs/operations.md)."""

from __future__ import annotations

import time

import httpx
import ray

from serve_app.core.pdf import render_pdf
from serve_app.deployments.detector import PageImage
from serve_app.training.synth import generate_document
from tests.app.conftest import APP_NAME

EXPECTED = [
    "ray_serve_app_embedder_batch_sentences_bucket",
    "ray_serve_app_embedder_queue_wait_seconds_bucket",
    "ray_serve_app_embedder_encode_seconds_bucket",
    "ray_serve_app_embedder_sentences_total",
    "ray_serve_app_detector_batch_pages_bucket",
    "ray_serve_app_detector_queue_wait_seconds_bucket",
    "ray_serve_app_detector_page_seconds_bucket",
    "ray_serve_app_detector_pages_total",
]


def scrape() -> str:
    """Every live node's Prometheus endpoint (what Prometheus scrapes; docs/operations.md)."""
    targets = [f"{n['NodeManagerAddress']}:{n['MetricsExportPort']}" for n in ray.nodes() if n["Alive"]]
    return "\n".join(httpx.get(f"http://{target}/metrics", timeout=10).text for target in targets)


def test_app_metrics_are_on_the_prometheus_endpoint(serve_url: str, http: httpx.Client) -> None:
    from ray import serve

    assert http.post("/v1/embed", json={"sentences": ["metrics, please"]}).status_code == 200
    image = render_pdf(generate_document(seed=31, num_pages=1, dpi=72).pdf, dpi=72)[0]
    detector = serve.get_deployment_handle("Detector", app_name=APP_NAME)
    detector.detect.remote(PageImage(image=ray.put(image))).result(timeout_s=120)

    deadline = time.monotonic() + 90  # metrics are exported every few seconds
    missing = EXPECTED
    while missing and time.monotonic() < deadline:
        text = scrape()
        missing = [name for name in EXPECTED if f"\n{name}{{" not in text]
        if missing:
            time.sleep(2)
    assert not missing, f"not exported: {missing}"
    pages = [line for line in text.splitlines() if line.startswith("ray_serve_app_detector_pages_total{")]
    assert any(float(line.rsplit(" ", 1)[1]) >= 1 for line in pages), pages
