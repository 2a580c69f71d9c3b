"""The deployments' own metrics reach the Prometheus endpoint of the local Ray (docs/operations.md)."""

from __future__ import annotations

import httpx
import ray

from serve_app.core.pdf import render_pdf
from serve_app.training.synth import generate_document
from serve_app.types import PageImage
from tools.launch import APP_NAME
from tools.wait import wait_until

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

    def missing() -> list[str]:
        return [name for name in EXPECTED if f"\n{name}{{" not in scrape()]

    # Metrics are exported every few seconds.
    wait_until(lambda: not missing(), 90, interval_s=2, message=lambda: f"not exported: {missing()}")
    text = scrape()
    pages = [line for line in text.splitlines() if line.startswith("ray_serve_app_detector_pages_total{")]
    assert any(float(line.rsplit(" ", 1)[1]) >= 1 for line in pages), pages
    # ray.serve.metrics tags every series with its application, deployment and replica.
    assert all('application="serve_app"' in line and 'deployment="Detector"' in line for line in pages), pages
    assert all('replica="' in line for line in pages), pages
