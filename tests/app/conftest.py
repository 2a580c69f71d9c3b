"""App tier: one real local Ray + Serve for the whole session, deployed from configs/serve.yaml.

Requests go over real HTTP to 127.0.0.1 (a free port, so a running `make run` does not clash)
and through real deployment handles. The JobRunner stores jobs in a real S3-compatible server
(moto's standalone server, a subprocess on 127.0.0.1) through boto3; `local_store` switches it to a
local directory for the tests that cover that back end.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
from ray import serve
from ray.serve.schema import ServeDeploySchema

from serve_app.core.auth import KEYS_FILE_ENV
from serve_app.core.webhooks import SECRET_ENV as WEBHOOK_SECRET_ENV
from serve_app.models.source import MODEL_CACHE_ENV
from tests.app.helpers import set_user_config, wait_for_ready_field
from tests.d2_models import random_model, train_tiny, upload
from tests.s3_server import make_bucket, moto_s3_server, s3_client, s3_env
from tools.launch import DEFAULT_CONFIG, deploy, free_port, load_config, use_serve_env

BUCKET = "serve-app-test"
PREFIX = "app-tier"
MODELS_BUCKET = "models"
WEBHOOK_SECRET = "whsec-app-tier-0123456789"  # signs completion webhooks (keys are off in most tests)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        make_bucket(endpoint, BUCKET, versioned=True)  # tests count the writes of each key
        yield endpoint


@pytest.fixture(scope="session")
def s3(s3_endpoint: str) -> Any:
    """A boto3 client of the test S3 server, to look at what the service stored."""
    return s3_client(s3_endpoint)


@pytest.fixture(scope="session")
def user_models(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """detectron2 models made as a user makes them, uploaded to the S3 server: name -> URI.

    ``shapes``: trained by the stock DefaultTrainer on two classes of its own; ``masks``: a Mask R-CNN
    and ``retina``: a RetinaNet, built by build_model and saved by DetectionCheckpointer; ``mismatched``:
    the Mask R-CNN's config with the RetinaNet's checkpoint (passes the checks at start, fails to load).
    """
    root = tmp_path_factory.mktemp("user_models")
    make_bucket(s3_endpoint, MODELS_BUCKET)
    client = s3_client(s3_endpoint)
    shapes = train_tiny(root / "shapes")
    masks = random_model(root / "masks", "mask_rcnn")
    retina = random_model(root / "retina", "retinanet")
    mismatched = root / "mismatched"
    mismatched.mkdir()
    for source, name in ((masks, "config.yaml"), (masks, "labels.json"), (retina, "model_final.pth")):
        shutil.copy(source / name, mismatched / name)
    return {
        "shapes": upload(client, MODELS_BUCKET, "shapes/v1", shapes),
        "masks": upload(client, MODELS_BUCKET, "masks", masks),
        "retina": upload(client, MODELS_BUCKET, "retina", retina),
        "mismatched": upload(client, MODELS_BUCKET, "mismatched", mismatched),
    }


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Detector replicas' node cache of fetched models (SERVE_APP_MODEL_CACHE), empty at start."""
    return tmp_path_factory.mktemp("model_cache")


@pytest.fixture(scope="session")
def api_keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The API key table the service reads (SERVE_APP_API_KEYS_FILE): ``{}`` (keys off) except while a test
    of keys writes its own (tests/app/test_api_keys_http.py)."""
    path = tmp_path_factory.mktemp("secrets") / "api-keys.json"
    path.write_text("{}")
    return path


@pytest.fixture(scope="session")
def serve_config(
    s3_endpoint: str, user_models: dict[str, str], model_cache: Path, api_keys_file: Path
) -> ServeDeploySchema:
    env = s3_env(s3_endpoint) | {
        "SERVE_APP_STORE_URL": f"s3://{BUCKET}/{PREFIX}",
        MODEL_CACHE_ENV: str(model_cache),
        KEYS_FILE_ENV: str(api_keys_file),
        WEBHOOK_SECRET_ENV: WEBHOOK_SECRET,
    }
    models = {"models": {"layout": "shipped", **user_models}, "default_model": "layout"}
    return load_config(DEFAULT_CONFIG, port=free_port(), env_vars=env, user_configs={"Detector": models})


@pytest.fixture(scope="session")
def serve_url(serve_config: ServeDeploySchema) -> Iterator[str]:
    use_serve_env()
    ray.init(namespace="serve", include_dashboard=False, log_to_driver=False)
    try:
        deploy(serve_config, timeout_s=300)
        yield f"http://127.0.0.1:{serve_config.http_options.port}"
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="session")
def http(serve_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_url, timeout=120) as client:
        yield client


@pytest.fixture
def local_store(serve_url: str, serve_config: ServeDeploySchema, tmp_path: Path) -> Iterator[Path]:
    """The JobRunner writes to a local directory for the duration of one test, then back to S3."""
    root = tmp_path / "store"
    set_user_config(serve_config, "JobRunner", store_url=f"file://{root}")
    wait_for_ready_field("JobRunner", "store", root.resolve().as_uri())
    try:
        yield root
    finally:
        set_user_config(serve_config, "JobRunner", store_url=None)
        wait_for_ready_field("JobRunner", "store", f"s3://{BUCKET}/{PREFIX}")


@pytest.fixture(scope="module")
def slow_detector(serve_url: str, serve_config: ServeDeploySchema) -> Iterator[float]:
    """Every page takes the Detector at least this long (DetectorConfig.min_page_seconds) while the
    module runs: a 16-page job then stays mid-way for many seconds, whatever the machine's speed."""
    seconds = 1.0
    set_user_config(serve_config, "Detector", min_page_seconds=seconds)
    wait_for_ready_field("Detector", "min_page_seconds", seconds)
    try:
        yield seconds
    finally:
        set_user_config(serve_config, "Detector", min_page_seconds=None)
        wait_for_ready_field("Detector", "min_page_seconds", 0.0)
