"""A real S3 endpoint for tests: moto's standalone server in a subprocess, spoken to over HTTP."""

from __future__ import annotations

import http.client
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tools.launch import free_port
from tools.wait import wait_until

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


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1:``port`` in a subprocess, which a test may stop and start
    again (on the same port: what the service knows as its endpoint). moto keeps its data in memory, so a
    restarted server starts empty."""

    def __init__(self, port: int | None = None, *, start_timeout_s: float = 30.0) -> None:
        self.host, self.port = "127.0.0.1", port or free_port()
        self.endpoint = f"http://{self.host}:{self.port}"
        self._start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        proc = self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

        def up() -> bool:
            if proc.poll() is not None:
                self._log.seek(0)
                output = self._log.read().decode(errors="replace")[-4000:]
                raise RuntimeError(f"moto S3 server exited ({proc.returncode}); its output:\n{output}")
            return _answers_http(self.host, self.port)

        wait_until(up, self._start_timeout_s, interval_s=0.1, message=f"no moto S3 server on {self.endpoint}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


@contextmanager
def moto_s3_server(*, start_timeout_s: float = 30.0) -> Iterator[str]:
    """Run ``python -m moto.server`` on a free 127.0.0.1 port; yield its endpoint URL; stop it on exit."""
    server = MotoServer(start_timeout_s=start_timeout_s)
    server.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


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


def make_bucket(endpoint: str, name: str, *, versioned: bool = False) -> None:
    """Create bucket ``name`` on the S3 server at ``endpoint``. A versioned bucket keeps every write, so a
    test can count how many times the service wrote each key."""
    client = s3_client(endpoint)
    client.create_bucket(Bucket=name)
    if versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def write_counts(client: Any, bucket: str, prefix: str) -> dict[str, int]:
    """How many times each key under ``prefix`` was written (object versions; the bucket is versioned)."""
    counts: dict[str, int] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts
