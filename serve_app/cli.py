"""``serve-app``: the service from a terminal, over HTTP (typer + rich + httpx).

    serve-app analyze paper.pdf --out paper/        # a job with a progress bar; JSON, Markdown, PNGs
    serve-app cluster sentences.txt                 # one sentence per line ("-": standard input)
    serve-app embed sentences.txt > vectors.json
    serve-app status                                # is it ready, which models does it serve

``--url`` (or ``SERVE_APP_URL``, default http://127.0.0.1:8000) and ``--api-key`` (or ``SERVE_APP_API_KEY``,
sent as a bearer token). Exit codes: 0 done, 1 the job failed, 2 bad usage or bad input (the service's
4xx), 3 the service is unreachable, unavailable or broken (5xx).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_SERVICE = 3
FINAL = ("succeeded", "failed", "cancelled")

EXAMPLES = """\
\b
Examples:
  serve-app analyze paper.pdf --out paper/            # result.json, result.md, pages/0001.png ...
  serve-app analyze scan.pdf -o out/ --model invoices --masks
  printf 'A man walks his dog.\\nA woman gives a talk.\\n' | serve-app cluster -
  serve-app embed sentences.txt > vectors.json
  SERVE_APP_URL=http://host:8000 serve-app status

Exit codes: 0 done, 1 the job failed, 2 bad usage or input the service refused (4xx),
3 the service is unreachable, not ready or failing (5xx).
"""

app = typer.Typer(
    name="serve-app",
    help="Analyse PDFs, group and embed sentences with a running serve_app service (make run starts one).",
    epilog=EXAMPLES,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
err = Console(stderr=True)
out = Console()

Url = Annotated[str, typer.Option("--url", envvar="SERVE_APP_URL", help="Where the service listens.")]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="SERVE_APP_API_KEY", help="Sent as 'Authorization: Bearer <key>'."),
]
Texts = Annotated[Path, typer.Argument(help="A text file, one sentence per line; '-' reads standard input.")]


class ServiceError(Exception):
    """An answer that ends the command: its message, and the exit code it maps to."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def client(url: str, api_key: str | None, timeout: float = 120.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)


def checked(response: httpx.Response) -> httpx.Response:
    """``response`` if it succeeded; else ``ServiceError`` with the service's own error message."""
    if response.is_success:
        return response
    try:
        error = response.json()["error"]
        message = f"{error['message']} ({error['code']}, HTTP {response.status_code})"
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {response.status_code}: {response.text[:200]}"
    raise ServiceError(message, EXIT_BAD_INPUT if response.status_code < 500 else EXIT_SERVICE)


def read_lines(path: Path) -> list[str]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ServiceError(f"{path} has no sentences (one per line)", EXIT_BAD_INPUT)
    return lines


def run(command: Any) -> None:
    """Run ``command``, turning every failure into a message and an exit code (no traceback)."""
    try:
        command()
    except ServiceError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.exit_code) from None
    except httpx.TransportError as exc:
        err.print(f"[red]error:[/red] cannot reach the service ({type(exc).__name__}: {exc}); is it running?")
        raise typer.Exit(EXIT_SERVICE) from None
    except OSError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


@app.command()
def analyze(
    pdf: Annotated[
        Path, typer.Argument(help="The PDF to analyse.", exists=True, dir_okay=False, readable=True)
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for result.json, result.md and pages/.")
    ],
    cluster: Annotated[bool, typer.Option(help="Also group similar regions across the document.")] = False,
    model: Annotated[
        str | None, typer.Option(help="A detectron2 model by name (see `serve-app status`).")
    ] = None,
    masks: Annotated[bool, typer.Option(help="Mask outlines too (models with masks).")] = False,
    dpi: Annotated[int, typer.Option(help="Rendering resolution, 36-300.")] = 72,
    pages: Annotated[bool, typer.Option(help="Download every annotated page as a PNG.")] = True,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Analyse a PDF as a job: a progress bar while it runs, then result.json, result.md and the annotated
    pages (pages/0001.png ...) in --out."""

    def command() -> None:
        params: dict[str, Any] = {"dpi": dpi, "cluster": cluster, "masks": masks}
        if model:
            params["model"] = model
        with client(url, api_key) as http:
            files = {"file": (pdf.name, pdf.read_bytes(), "application/pdf")}
            job = checked(http.post("/v1/jobs", files=files, params=params)).json()
            state = follow(http, job)
            if state["status"] != "succeeded":
                reason = state.get("error") or state["status"]
                raise ServiceError(f"the job did not succeed: {reason}", EXIT_JOB_FAILED)
            out_dir.mkdir(parents=True, exist_ok=True)
            result = checked(http.get(f"/v1/jobs/{job['id']}/result")).content
            (out_dir / "result.json").write_bytes(result)
            (out_dir / "result.md").write_bytes(checked(http.get(f"/v1/jobs/{job['id']}/result.md")).content)
            if pages:
                (out_dir / "pages").mkdir(exist_ok=True)
                for number in range(1, state["pages_total"] + 1):
                    png = checked(http.get(f"/v1/jobs/{job['id']}/pages/{number}.png")).content
                    (out_dir / "pages" / f"{number:04d}.png").write_bytes(png)
            regions = sum(len(p["regions"]) for p in json.loads(result)["pages"])
            err.print(
                f"[green]done:[/green] {state['pages_total']} pages, {regions} regions -> {out_dir}/"
                "result.json, result.md" + (", pages/" if pages else "")
            )

    run(command)


def follow(http: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    """Show the job's progress from its event stream until it ends; return its final state."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    state = job
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(job["status"], total=job["pages_total"], completed=job["pages_done"])
        while state["status"] not in FINAL:
            # One stream lasts a bounded time; reconnect from the pages already seen until the job ends.
            headers = {"Last-Event-ID": str(state["pages_done"])}
            with http.stream("GET", f"/v1/jobs/{job['id']}/events", headers=headers, timeout=None) as stream:
                checked_stream(stream)
                for event, data in sse_events(stream.iter_lines()):
                    if event == "page":
                        progress.update(task, completed=data["pages_done"], description="running")
                        state = {**state, "pages_done": data["pages_done"]}
                    else:
                        state = data
                        progress.update(task, completed=data["pages_done"], description=data["status"])
                    if state["status"] in FINAL:
                        break
    return state


def checked_stream(stream: httpx.Response) -> None:
    if not stream.is_success:
        stream.read()
        checked(stream)


def sse_events(lines: Any) -> Any:
    """(event, data) pairs of a text/event-stream."""
    event, data = "", ""
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif not line and event:
            yield event, json.loads(data)
            event, data = "", ""


@app.command(name="cluster")
def cluster_command(
    texts: Texts,
    num_clusters: Annotated[int | None, typer.Option(help="Cut into this many groups instead.")] = None,
    min_cluster_size: Annotated[int, typer.Option(help="Smaller groups are listed as unclustered.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the service's JSON answer.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Group sentences with similar meaning and print the groups, each with its representative."""

    def command() -> None:
        body: dict[str, Any] = {"sentences": read_lines(texts), "min_cluster_size": min_cluster_size}
        if num_clusters is not None:
            body["num_clusters"] = num_clusters
        with client(url, api_key) as http:
            answer = checked(http.post("/v1/cluster", json=body)).json()
        if as_json:
            out.print_json(data=answer)
            return
        for n, group in enumerate(answer["clusters"], 1):
            out.print(f"[bold]Group {n}[/bold] ({group['size']}): {group['representative']['text']}")
            for member in group["members"]:
                out.print(f"  - {member['text']}", highlight=False)
        if answer["unclustered"]:
            out.print("[bold]Unclustered[/bold]")
            for member in answer["unclustered"]:
                out.print(f"  - {member['text']}", highlight=False)

    run(command)


@app.command()
def embed(texts: Texts, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Print the embeddings of the sentences as JSON: {"dimension", "count", "embeddings"}."""

    def command() -> None:
        with client(url, api_key) as http:
            answer = checked(http.post("/v1/embed", json={"sentences": read_lines(texts)})).json()
        sys.stdout.write(json.dumps(answer) + "\n")

    run(command)


@app.command()
def status(url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Whether the service is ready (each deployment) and which detectron2 models it serves."""

    def command() -> None:
        with client(url, api_key, timeout=30) as http:
            ready = http.get("/readyz")
            if ready.status_code not in (200, 503):
                checked(ready)
            body = ready.json()
            table = Table("deployment", "state", title=f"{url}: {body['status']}")
            for name, state in body["deployments"].items():
                table.add_row(name, state)
            out.print(table)
            if ready.status_code == 200:
                models = checked(http.get("/v1/models")).json()
                listed = Table("model", "labels", "architecture", "digest", title="detectron2 models")
                for m in models["models"]:
                    name = m["name"] + (" (default)" if m["default"] else "")
                    listed.add_row(name, ", ".join(m["labels"]), m["architecture"], m["digest"][:12])
                out.print(listed)
        if body["status"] not in ("ready", "busy", "degraded"):  # busy: shedding load; degraded: store down
            raise ServiceError("the service is not ready", EXIT_SERVICE)

    run(command)


@app.command("new-key")
def new_key_command(
    name: Annotated[str, typer.Argument(help="The key's name (who uses it); it owns the jobs it submits.")],
) -> None:
    """Make an API key: prints the key (give it to its user; it is not stored anywhere) and the entry for the
    key table (SERVE_APP_API_KEYS / the api-keys.json Secret), which holds only its SHA-256."""
    from serve_app.core.auth import ApiKey, new_key

    key, digest = new_key()
    try:
        ApiKey(name=name, sha256=digest)
    except ValueError as exc:
        err.print(f"[red]error:[/red] invalid name {name!r}: {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    err.print(f"API key for {name} (shown once):")
    typer.echo(key)
    err.print("Its entry in api-keys.json (add webhook_secret, max_jobs, max_pages as needed):")
    typer.echo(json.dumps({name: {"sha256": digest}}))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
