"""``serve-app``, the console script, against the running app (real HTTP, a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pymupdf

from tests import pdfs
from tests.examples import DOG_WALKING, NINE_TITLES, PUBLIC_SPEAKING
from tools.launch import free_port

SERVE_APP = Path(sys.executable).parent / "serve-app"  # installed by `pip install -e .` (make install)


def cli(*args: str, url: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVE_APP), *args, "--url", url], input=stdin, capture_output=True, text=True, timeout=300
    )


def test_help_teaches_the_commands() -> None:
    result = subprocess.run([str(SERVE_APP), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for word in ("analyze", "cluster", "embed", "status", "Examples:", "Exit codes"):
        assert word in result.stdout


def test_analyze_writes_json_markdown_and_pages(serve_url: str, tmp_path: Path) -> None:
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(pdfs.text_pdf(3))
    result = cli("analyze", str(pdf), "--out", str(tmp_path / "out"), url=serve_url)
    assert result.returncode == 0, result.stderr
    assert "3/3" in result.stderr and "done:" in result.stderr  # the progress bar reached the end
    analysis = json.loads((tmp_path / "out" / "result.json").read_text())
    assert analysis["page_count"] == 3 and analysis["model"]["name"] == "layout"
    markdown = (tmp_path / "out" / "result.md").read_text()
    assert markdown.startswith("<!-- page 1 -->") and "<!-- page 3 -->" in markdown
    pngs = sorted(p.name for p in (tmp_path / "out" / "pages").iterdir())
    assert pngs == ["0001.png", "0002.png", "0003.png"]
    png = pymupdf.Pixmap(str(tmp_path / "out" / "pages" / "0001.png"))
    assert png.width == round(analysis["pages"][0]["width"])  # the page at 72 dpi, legend below


def test_cluster_embed_and_status(serve_url: str, http: httpx.Client, tmp_path: Path) -> None:
    grouped = cli("cluster", "-", url=serve_url, stdin="\n".join(NINE_TITLES) + "\n")
    assert grouped.returncode == 0, grouped.stderr
    groups = [block for block in grouped.stdout.split("Group ")[1:]]
    assert len(groups) == 2
    for block in groups:
        members = {line.strip()[2:] for line in block.splitlines()[1:] if line.strip().startswith("- ")}
        assert members in (set(DOG_WALKING), set(PUBLIC_SPEAKING))
    as_json = cli("cluster", "-", "--json", url=serve_url, stdin="\n".join(NINE_TITLES))
    assert json.loads(as_json.stdout) == http.post("/v1/cluster", json={"sentences": NINE_TITLES}).json()

    texts = tmp_path / "texts.txt"
    texts.write_text("A man walks his dog.\n\nA woman gives a talk.\n")
    embedded = cli("embed", str(texts), url=serve_url)
    assert embedded.returncode == 0, embedded.stderr
    answer = json.loads(embedded.stdout)
    assert (answer["count"], answer["dimension"]) == (2, 384)

    status = cli("status", url=serve_url)
    assert status.returncode == 0, status.stderr
    assert "ready" in status.stdout and "layout (default)" in status.stdout


def test_errors_are_one_line_with_a_meaningful_exit_code(serve_url: str, tmp_path: Path) -> None:
    fake = tmp_path / "fake.pdf"
    fake.write_text("not a pdf")
    refused = cli("analyze", str(fake), "--out", str(tmp_path / "o"), url=serve_url)
    assert refused.returncode == 2 and "error:" in refused.stderr and "invalid_input" in refused.stderr
    assert "Traceback" not in refused.stderr
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(pdfs.text_pdf(1))
    unknown = cli("analyze", str(pdf), "--out", str(tmp_path / "o"), "--model", "nope", url=serve_url)
    assert unknown.returncode == 2 and "unknown model 'nope'" in unknown.stderr
    empty = cli("cluster", "-", url=serve_url, stdin="\n \n")
    assert empty.returncode == 2 and "no sentences" in empty.stderr
    nobody = cli("status", url=f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode == 3 and "cannot reach the service" in nobody.stderr
    missing = cli("analyze", str(tmp_path / "missing.pdf"), "--out", str(tmp_path / "o"), url=serve_url)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
