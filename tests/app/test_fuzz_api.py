"""Schema-based fuzzing of the running app in CI: schemathesis (schemathesis.toml) with all its checks, a
bounded number of examples per operation, and its stateful phase, which follows the OpenAPI links from
``POST /v1/jobs`` to the job routes. It must find nothing: no 5xx, no answer the document does not
describe, schema-valid requests accepted and schema-invalid ones rejected with a documented 4xx."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_schemathesis_finds_nothing(serve_url: str, tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.json"
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{serve_url}/openapi.json",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "8",
        "--seed",
        "20261201",
        "--workers",
        "1",  # one request at a time: a large valid request never makes the next one a 503
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts is not None and counts[1] == counts[2] and int(counts[1]) > 100, output[-6000:]
    # The stateful phase ran, and followed links from a job it created to the job routes.
    links = re.search(r"API Links:\s+(\d+) covered", output)
    assert links is not None and int(links[1]) >= 1, output[-6000:]
    assert any(line.strip() for line in report.read_text().splitlines())  # the NDJSON report was written
