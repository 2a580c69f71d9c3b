"""A real S3 endpoint for tests: moto's standalone server in a subprocess, spoken to over HTTP."""

from __future__ import annotations

import http.client
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from serve_app.launch import free_port

TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
TEST_REGION = "us-east-1"


def _answers_http(host: str, port: int) -> bool:
    # http.client rather than urllib: an HTTP(S)_PROXY in the environment must not intercept 127.0.0.1.
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", "/moto-api/")
        return conn.getresponse().status < 500
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def moto_s3_server(*, start_timeout_s: float = 30.0) -> Iterator[str]:
    """Run ``python -m moto.server`` on a free 127.0.0.1 port; yield its endpoint URL; stop it on exit."""
    host, port = "127.0.0.1", free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + start_timeout_s
            while not _answers_http(host, port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")[-4000:]
                    state = (
                        f"exited with code {proc.returncode}"
                        if proc.poll() is not None
                        else f"did not answer within {start_timeout_s:.0f} s"
                    )
                    raise RuntimeError(f"moto S3 server on {host}:{port} {state}; its output:\n{output}")
                time.sleep(0.1)
            yield f"http://{host}:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def s3_env(endpoint: str) -> dict[str, str]:
    """Environment variables that point boto3's default chain at ``endpoint`` with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": TEST_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": TEST_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": TEST_REGION,
        "AWS_REGION": TEST_REGION,
    }


def s3_client(endpoint: str, **config: Any) -> Any:
    """A boto3 S3 client for ``endpoint`` with explicit test credentials (ignores the environment's)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=TEST_REGION,
        config=Config(**config) if config else None,
        **TEST_CREDENTIALS,
    )


def make_bucket(endpoint: str, name: str) -> None:
    """Create bucket ``name`` on the S3 server at ``endpoint``."""
    s3_client(endpoint).create_bucket(Bucket=name)
