"""Overload: open-loop load at 2x and 10x the measured capacity of /v1/embed, /v1/cluster and /v1/detect.

    python -m benchmarks.overload           # or: make bench-overload   (about 7 minutes on 2 cores)
    python -m benchmarks.overload --quick   # 3 s phases (smoke check; docs/benchmarks.md untouched)
    python -m benchmarks.overload --url http://127.0.0.1:8000 --no-write   # a service already running

For each route, in turn:
(a) capacity: ``CLIENTS`` closed-loop clients after a short warm-up; successful requests per second;
(b) overload: requests started at a fixed arrival rate of each multiplier x capacity, whatever the
    answers (as real overload arrives), for ``--seconds``, at most ``MAX_OUTSTANDING`` outstanding (an
    arrival over the cap is counted, not sent) and ``CLIENT_TIMEOUT_S`` per request (then counted as a
    client timeout). Every request's status and latency are recorded, and on 503/429 answers whether
    Retry-After is set and the body is ``{"error": {"code", "message"}}``. Meanwhile a separate process
    GETs /healthz every ``PROBE_INTERVAL_S`` over its own connection.
Bodies: 32 real sentences (data/topic_texts.jsonl) for embed and cluster; a one-page PDF made here with
pymupdf (a title and four paragraphs) for detect. Reports goodput, share shed, p99 of the accepted and of
the shed requests and the /healthz p99 against the issue's targets (measured, never asserted: a missed
target is reported, it does not fail the run). Writes build/bench/overload.json (every request) and the
section of docs/benchmarks.md (not with --quick or --no-write). Never run as a test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import multiprocessing
import resource
import ssl
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import pymupdf

from benchmarks._harness import (
    ROOT,
    bench_parser,
    closed_loop,
    machine,
    percentiles_ms,
    sentences,
    start_service,
    write_section,
)

HEADING = "## Overload (make bench-overload)"
RAW_JSON = ROOT / "build" / "bench" / "overload.json"
CLIENTS = 8  # closed-loop clients measuring capacity (8 x 32 sentences: the Ingress's 256 in flight)
DETECT_CLIENTS = 4  # /v1/detect admits 4 pages at a time (JobRunner max_sync_pages_queued)
PER_REQUEST = 32  # sentences per embed / cluster request
MAX_OUTSTANDING = 2000  # open loop: arrivals beyond this many unanswered requests are not sent
# Open loop: httpx's connection pool costs O(connections) per request, so the outstanding requests are
# spread over many small clients (each request goes to the client with the fewest in flight).
CONNECTIONS_PER_CLIENT = 32
CLIENT_TIMEOUT_S = 60.0  # open loop: a request unanswered this long is a client timeout
PROBE_INTERVAL_S = 0.1
PROBE_TIMEOUT_S = 5.0  # a failed or timed-out probe counts as this latency in the percentiles
SHED = (503, 429)
ROUTES = ("embed", "cluster", "detect")
# The targets.
GOODPUT_MIN = 0.9  # of capacity, every route and multiplier
EMBED_P99_MAX_S = 2.0  # accepted /v1/embed requests at 10x
HEALTHZ_P99_MAX_S = 0.1  # throughout


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    content_type: str
    bodies: list[bytes]  # sent in turn
    body: str  # for the report
    clients: int = 8  # closed-loop clients measuring capacity: no more than the service admits at once


@dataclass(frozen=True)
class Capacity:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


@dataclass(frozen=True)
class Answer:
    """One open-loop request: when it was sent (s after the first), how long it took, what came back."""

    sent_s: float
    latency_s: float
    status: int | str  # HTTP status, or "client_timeout" / "transport_error"
    retry_after: bool | None = None  # 503/429 only: Retry-After header present
    error_json: bool | None = None  # 503/429 only: body is {"error": {"code", "message"}}


@dataclass(frozen=True)
class Probe:
    at_s: float
    latency_s: float
    status: int | str  # HTTP status, or "timeout" / "error"

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class OverloadRun:
    route: str
    multiplier: float
    capacity_per_s: float
    offered_per_s: float
    seconds: float
    answers: list[Answer]
    not_sent: int  # arrivals over MAX_OUTSTANDING
    drain_s: float  # from the end of the window to the last answer
    generator_cpu: float  # CPU seconds of this process / wall seconds of the run
    generator_lag_p99_ms: float  # how late the requests were sent (the load generator falling behind)
    probes: list[Probe]
    summary: dict[str, Any] = field(default_factory=dict)


# --- bodies -----------------------------------------------------------------------------------------


def sentence_bodies(texts: Sequence[str]) -> list[bytes]:
    """JSON bodies of ``PER_REQUEST`` consecutive texts each, through ``texts`` (cycling) until it repeats."""
    distinct = len(texts) // math.gcd(len(texts), PER_REQUEST)
    batches = (
        [texts[(i * PER_REQUEST + k) % len(texts)] for k in range(PER_REQUEST)] for i in range(distinct)
    )
    return [json.dumps({"sentences": batch}).encode() for batch in batches]


def one_page_pdf(texts: Sequence[str]) -> bytes:
    """A4 page: a title and four paragraphs of real text (a text layer, as a born-digital PDF has)."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 96), "Operating notes for the package archive", fontsize=20)
    y = 130.0
    for p in range(4):  # four parts of the file, so four topics
        first = p * len(texts) // 4
        paragraph = ". ".join(texts[first : first + 8]) + "."
        page.insert_textbox(pymupdf.Rect(72, y, 523, y + 120), paragraph, fontsize=11)
        y += 140
    pdf: bytes = doc.tobytes()
    doc.close()
    return pdf


def routes(names: Sequence[str]) -> list[Route]:
    texts = sentences()
    bodies = sentence_bodies(texts)
    every = {
        "embed": Route("embed", "/v1/embed", "application/json", bodies, f"{PER_REQUEST} sentences"),
        "cluster": Route("cluster", "/v1/cluster", "application/json", bodies, f"{PER_REQUEST} sentences"),
        "detect": Route(
            "detect", "/v1/detect", "application/pdf", [one_page_pdf(texts)], "1-page PDF", DETECT_CLIENTS
        ),
    }
    return [every[n] for n in names]


# --- capacity (closed loop) -------------------------------------------------------------------------


async def measure_capacity(url: str, route: Route, *, seconds: float, warm_up: float) -> Capacity:
    """``route.clients`` closed-loop clients for ``seconds`` after ``warm_up`` s; any non-2xx is an error (a
    client that is refused waits as Retry-After says before it sends again)."""
    limits = httpx.Limits(max_connections=route.clients, max_keepalive_connections=route.clients)
    headers = {"content-type": route.content_type}
    turn = itertools.count()
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT_S, limits=limits) as client:

        async def send(_: list[str]) -> bool:
            body = route.bodies[next(turn) % len(route.bodies)]
            try:
                response = await client.post(route.path, content=body, headers=headers)
            except httpx.HTTPError:
                return False
            if response.status_code in (429, 503):
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            return response.is_success

        def no_batches(_: int) -> Iterator[list[str]]:  # the bodies are chosen in ``send``
            return itertools.repeat([])

        await closed_loop(send, no_batches, clients=route.clients, seconds=warm_up)
        load = await closed_loop(send, no_batches, clients=route.clients, seconds=seconds)
    p50, p99 = percentiles_ms([latency for _, latency in load.samples])
    return Capacity(load.requests / load.elapsed, p50, p99, load.requests, load.errors)


# --- the /healthz prober (its own process, so that the load generator's event loop cannot delay it) --


def probe_loop(url: str, stop: Any, results: Any) -> None:
    """GET /healthz every ``PROBE_INTERVAL_S`` until ``stop`` is set; send the probes to ``results``."""
    probes: list[tuple[float, float, int | str]] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=url, timeout=PROBE_TIMEOUT_S, limits=limits) as http:
        results.send("ready")
        began = next_at = time.perf_counter()
        while not stop.is_set():
            t0 = time.perf_counter()
            status: int | str
            try:
                status = http.get("/healthz").status_code
            except httpx.TimeoutException:
                status = "timeout"
            except httpx.HTTPError:
                status = "error"
            probes.append((t0 - began, time.perf_counter() - t0, status))
            next_at = max(next_at + PROBE_INTERVAL_S, time.perf_counter())  # missed slots are skipped
            stop.wait(next_at - time.perf_counter())
    results.send(probes)


class Prober:
    """``probe_loop`` in a spawned process, from ``start()`` to ``stop()``."""

    def __init__(self, url: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._results, child_end = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=probe_loop, args=(url, self._stop, child_end), daemon=True)

    def start(self) -> None:
        self._process.start()
        if not self._results.poll(60) or self._results.recv() != "ready":
            raise RuntimeError("the /healthz prober did not start")

    def stop(self) -> list[Probe]:
        self._stop.set()
        probes = [Probe(*p) for p in self._results.recv()] if self._results.poll(30) else []
        self._process.join(10)
        return probes


def idle_probes(url: str, seconds: float) -> list[Probe]:
    prober = Prober(url)
    prober.start()
    time.sleep(seconds)
    return prober.stop()


# --- overload (open loop) ---------------------------------------------------------------------------


def shed_body_ok(response: httpx.Response) -> bool:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return False
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
    )


class Clients:
    """``ceil(MAX_OUTSTANDING / CONNECTIONS_PER_CLIENT)`` httpx clients; ``pick`` the least busy one."""

    def __init__(self, stack: AsyncExitStack, url: str) -> None:
        limits = httpx.Limits(
            max_connections=CONNECTIONS_PER_CLIENT, max_keepalive_connections=CONNECTIONS_PER_CLIENT
        )
        tls = ssl.create_default_context()  # one, not one per client (each would load the CA bundle)
        count = -(-MAX_OUTSTANDING // CONNECTIONS_PER_CLIENT)
        self.clients = [
            httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT_S, limits=limits, verify=tls)
            for _ in range(count)
        ]
        for client in self.clients:
            stack.push_async_callback(client.aclose)
        self.in_flight = [0] * count

    def pick(self) -> int:
        return min(range(len(self.clients)), key=self.in_flight.__getitem__)


async def open_loop(
    url: str, route: Route, *, rate: float, seconds: float
) -> tuple[list[Answer], int, float, list[float]]:
    """Start a request every 1/``rate`` s for ``seconds`` whatever the answers; wait for the last answer.

    Returns the answers, the arrivals not sent (``MAX_OUTSTANDING`` reached), the drain time (end of the
    window to the last answer) and how late each request was sent (s, the load generator's own lag).
    """
    headers = {"content-type": route.content_type}
    answers: list[Answer] = []
    lags: list[float] = []
    tasks: set[asyncio.Task[None]] = set()
    not_sent = 0
    async with AsyncExitStack() as stack:
        clients = Clients(stack, url)
        began = time.perf_counter()

        async def one(body: bytes, due: float) -> None:
            which = clients.pick()
            clients.in_flight[which] += 1
            sent = time.perf_counter()
            lags.append(sent - due)
            try:
                async with asyncio.timeout(CLIENT_TIMEOUT_S):
                    response = await clients.clients[which].post(route.path, content=body, headers=headers)
            except (TimeoutError, httpx.TimeoutException):
                answers.append(Answer(sent - began, time.perf_counter() - sent, "client_timeout"))
                return
            except httpx.HTTPError:
                answers.append(Answer(sent - began, time.perf_counter() - sent, "transport_error"))
                return
            finally:
                clients.in_flight[which] -= 1
            latency = time.perf_counter() - sent
            if response.status_code in SHED:
                retry_after = "retry-after" in response.headers
                answers.append(
                    Answer(sent - began, latency, response.status_code, retry_after, shed_body_ok(response))
                )
            else:
                answers.append(Answer(sent - began, latency, response.status_code))

        for i in itertools.count():
            due = began + i / rate
            if due >= began + seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= MAX_OUTSTANDING:
                not_sent += 1
                continue
            task = asyncio.create_task(one(route.bodies[i % len(route.bodies)], due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        window_end = began + seconds
        if tasks:
            await asyncio.gather(*tasks)
        drain = max(0.0, time.perf_counter() - window_end)
    return answers, not_sent, drain, lags


def overload_run(url: str, route: Route, capacity: float, multiplier: float, seconds: float) -> OverloadRun:
    rate = capacity * multiplier
    prober = Prober(url)
    prober.start()
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    answers, not_sent, drain, lags = asyncio.run(open_loop(url, route, rate=rate, seconds=seconds))
    cpu = (cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
    probes = prober.stop()
    _, lag_p99 = percentiles_ms(lags)
    run = OverloadRun(
        route.name, multiplier, capacity, rate, seconds, answers, not_sent, drain, cpu, lag_p99, probes
    )
    run.summary = summarize(run)
    return run


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_open_files_limit() -> None:
    """One connection per outstanding request: make sure the descriptors are there."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = MAX_OUTSTANDING + 512
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(hard, want), hard)
        )


# --- summary and report -----------------------------------------------------------------------------


def share(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def probe_stats(probes: Sequence[Probe]) -> dict[str, float | int]:
    """p50/p99/max ms of the probes; a failed probe counts as ``PROBE_TIMEOUT_S``."""
    latencies = [p.latency_s if p.ok else max(p.latency_s, PROBE_TIMEOUT_S) for p in probes]
    p50, p99 = percentiles_ms(latencies)
    return {
        "probes": len(probes),
        "failed": sum(not p.ok for p in probes),
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max(latencies) * 1e3 if latencies else float("nan"),
    }


def summarize(run: OverloadRun) -> dict[str, Any]:
    statuses = [a.status for a in run.answers]
    answered = [a for a in run.answers if isinstance(a.status, int)]
    accepted = [a for a in answered if 200 <= int(a.status) < 300]
    shed = [a for a in answered if a.status in SHED]
    in_window = [a for a in accepted if a.sent_s + a.latency_s <= run.seconds]
    accepted_p50, accepted_p99 = percentiles_ms([a.latency_s for a in accepted])
    _, shed_p99 = percentiles_ms([a.latency_s for a in shed])
    probes = probe_stats(run.probes)
    goodput = len(in_window) / run.seconds
    return {
        "offered_per_s": run.offered_per_s,
        "sent": len(run.answers),
        "sent_per_s": len(run.answers) / run.seconds,
        "not_sent": run.not_sent,
        "answered": len(answered),
        "accepted": len(accepted),
        "goodput_per_s": goodput,
        "goodput_vs_capacity": goodput / run.capacity_per_s,
        "shed": len(shed),
        "shed_share": share(len(shed), len(answered)),
        "status_504": statuses.count(504),
        "share_504": share(statuses.count(504), len(answered)),
        "other_5xx": sum(1 for a in answered if int(a.status) >= 500 and a.status not in (503, 504)),
        "other_status": sum(
            1
            for a in answered
            if not 200 <= int(a.status) < 300 and a.status not in SHED and int(a.status) < 500
        ),
        "client_timeouts": statuses.count("client_timeout"),
        "transport_errors": statuses.count("transport_error"),
        "accepted_p50_ms": accepted_p50,
        "accepted_p99_ms": accepted_p99,
        "shed_p99_ms": shed_p99,
        "retry_after_share": share(sum(bool(a.retry_after) for a in shed), len(shed)),
        "error_json_share": share(sum(bool(a.error_json) for a in shed), len(shed)),
        "healthz": probes,
        "drain_s": run.drain_s,
        "generator_cpu": run.generator_cpu,
        "generator_lag_p99_ms": run.generator_lag_p99_ms,
        "status_counts": {str(s): statuses.count(s) for s in sorted(set(statuses), key=str)},
    }


def fmt_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}"


def fmt_share(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"


def check(ok: bool) -> str:
    return "✓" if ok else "✗"


def target_lines(runs: Sequence[OverloadRun]) -> list[str]:
    """The issue's targets, each with ✓/✗ and the measured value."""
    lines = []
    if runs:
        worst = min(runs, key=lambda r: r.summary["goodput_vs_capacity"])
        ratio = worst.summary["goodput_vs_capacity"]
        lines.append(
            f"- {check(ratio >= GOODPUT_MIN)} goodput ≥ {GOODPUT_MIN:.0%} of capacity: lowest "
            f"{ratio:.0%} ({worst.route} at {worst.multiplier:g}x)"
        )
    embed_10 = [r for r in runs if r.route == "embed" and r.multiplier == 10]
    if embed_10:
        p99 = embed_10[0].summary["accepted_p99_ms"]
        lines.append(
            f"- {check(p99 <= EMBED_P99_MAX_S * 1e3)} accepted /v1/embed p99 ≤ {EMBED_P99_MAX_S:g} s at 10x: "
            f"{fmt_ms(p99)} ms"
        )
    else:
        lines.append(f"- n/a accepted /v1/embed p99 ≤ {EMBED_P99_MAX_S:g} s at 10x: not measured in this run")
    if runs:
        worst = max(runs, key=lambda r: r.summary["healthz"]["p99_ms"])
        health = worst.summary["healthz"]
        failed = sum(r.summary["healthz"]["failed"] for r in runs)
        lines.append(
            f"- {check(health['p99_ms'] <= HEALTHZ_P99_MAX_S * 1e3)} /healthz p99 ≤ "
            f"{HEALTHZ_P99_MAX_S * 1e3:.0f} ms throughout: highest p99 {health['p99_ms']:.0f} ms "
            f"({worst.route} at {worst.multiplier:g}x); {failed} failed or timed-out probes in all"
        )
        other = sum(r.summary["other_5xx"] for r in runs)
        lines.append(f"- {check(other == 0)} no 5xx other than 503/504: {other}")
    return lines


def render(
    runs: Sequence[OverloadRun],
    capacities: dict[str, Capacity],
    chosen: Sequence[Route],
    idle: dict[str, float | int],
    *,
    url: str | None,
    seconds: float,
    capacity_seconds: float,
    warm_up: float,
    replicas: dict[str, Any] | None,
) -> str:
    where = (
        f"the service at {url}"
        if url
        else "configs/serve.yaml as shipped on a local Ray started by the script"
    )
    lines = [
        HEADING,
        "",
        f"Command: `make bench-overload` (`python -m benchmarks.overload`). Machine: {machine()}. "
        f"Run on {time.strftime('%Y-%m-%d')} against {where}.",
        f"Capacity: {CLIENTS} closed-loop clients ({DETECT_CLIENTS} for /v1/detect) for "
        f"{capacity_seconds:g} s after a {warm_up:g} s warm-up (successful requests per second; a refused "
        "client waits Retry-After). Overload: requests started at a fixed rate of the multiplier x "
        f"capacity for {seconds:g} s, whatever the answers, at most {MAX_OUTSTANDING} outstanding (arrivals "
        f"beyond are counted, not sent) and a {CLIENT_TIMEOUT_S:g} s client timeout. Goodput: 2xx answers "
        "received within the load window ÷ its length. Shed: 503 and 429, as a share of the answered "
        f"requests. A separate process GETs `/healthz` every {PROBE_INTERVAL_S * 1e3:.0f} ms over its own "
        f"connection; a failed or timed-out probe counts as {PROBE_TIMEOUT_S:g} s. Bodies: "
        + "; ".join(f"`{r.path}` {r.body}" for r in chosen)
        + " (real texts of data/topic_texts.jsonl). The load generator (one asyncio process, httpx) runs "
        "on the same machine as the service and takes CPU from it; its CPU use is in the last column. "
        "Raw answers: build/bench/overload.json.",
        "",
        "Targets (from the issue; measured, not asserted):",
        "",
        *target_lines(runs),
        "",
        "| route | body | capacity req/s | p50 ms | p99 ms | failed |",
        "|---|---|---:|---:|---:|---:|",
        *[
            f"| `{r.path}` | {r.body} | {capacities[r.name].requests_per_s:.1f} | "
            f"{fmt_ms(capacities[r.name].p50_ms)} | {fmt_ms(capacities[r.name].p99_ms)} | "
            f"{capacities[r.name].errors} |"
            for r in chosen
            if r.name in capacities
        ],
        "",
        "| route | load | offered req/s | sent req/s | goodput req/s | goodput / capacity | shed | 504 | "
        "other 5xx | other status | client timeouts + errors | accepted p50 ms | accepted p99 ms | "
        "shed p99 ms | /healthz p50 / p99 / max ms | Retry-After on shed | JSON error on shed | "
        "generator CPU / lag p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for run in runs:
        s, h = run.summary, run.summary["healthz"]
        not_sent = f" ({run.not_sent} over the cap)" if run.not_sent else ""
        failed = f" ({h['failed']} failed)" if h["failed"] else ""
        lines.append(
            f"| `/v1/{run.route}` | {run.multiplier:g}x | {s['offered_per_s']:.1f} | "
            f"{s['sent_per_s']:.1f}{not_sent} | {s['goodput_per_s']:.1f} | {s['goodput_vs_capacity']:.0%} | "
            f"{fmt_share(s['shed_share'])} | {fmt_share(s['share_504'])} | {s['other_5xx']} | "
            f"{s['other_status']} | {s['client_timeouts'] + s['transport_errors']} | "
            f"{fmt_ms(s['accepted_p50_ms'])} | {fmt_ms(s['accepted_p99_ms'])} | {fmt_ms(s['shed_p99_ms'])} | "
            f"{fmt_ms(h['p50_ms'])} / {fmt_ms(h['p99_ms'])} / {fmt_ms(h['max_ms'])}{failed} | "
            f"{fmt_share(s['retry_after_share'])} | {fmt_share(s['error_json_share'])} | "
            f"{s['generator_cpu']:.0%} / {fmt_ms(s['generator_lag_p99_ms'])} |"
        )
    lines += [
        "",
        f"/healthz on the idle service before the load: p50 {fmt_ms(float(idle['p50_ms']))} ms, "
        f"p99 {fmt_ms(float(idle['p99_ms']))} ms, max {fmt_ms(float(idle['max_ms']))} ms "
        f"({idle['probes']} probes, {idle['failed']} failed). Generator CPU: CPU seconds of the load "
        "generator's process per wall second (100% = one core); lag: how late it started the requests "
        "(large: the generator, not the service, limited the offered rate).",
    ]
    if replicas is not None:
        lines.append(f"Replicas per deployment at the end (autoscaling as shipped): {replicas}.")
    lines.append("")
    return "\n".join(lines)


def serve_replicas() -> dict[str, Any]:
    from ray import serve

    deployments = serve.status().applications["serve_app"].deployments
    return {name: dict(d.replica_states) for name, d in deployments.items()}


def main() -> None:
    parser = bench_parser(
        "overload: goodput, shedding and /healthz at 2x and 10x capacity",
        quick_help="3 s phases; docs/benchmarks.md untouched (the raw JSON is still written)",
    )
    parser.add_argument("--url", help="a running service (default: start configs/serve.yaml on a local Ray)")
    parser.add_argument("--routes", default=",".join(ROUTES), help="comma list of embed, cluster, detect")
    parser.add_argument("--multipliers", default="2,10", help="comma list of multiples of capacity")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each overload run")
    parser.add_argument("--capacity-seconds", type=float, default=15.0, help="length of each capacity run")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md untouched")
    args = parser.parse_args()
    names = [n.strip() for n in args.routes.split(",") if n.strip()]
    unknown = set(names) - set(ROUTES)
    if unknown:
        parser.error(f"unknown routes {sorted(unknown)}; choose from {', '.join(ROUTES)}")
    multipliers = [float(m) for m in args.multipliers.split(",") if m.strip()]
    seconds, capacity_seconds = (3.0, 3.0) if args.quick else (args.seconds, args.capacity_seconds)
    warm_up, cool_down, idle_s = (1.0, 1.0, 2.0) if args.quick else (3.0, 5.0, 5.0)
    raise_open_files_limit()
    chosen = routes(names)

    started_here = args.url is None
    url = start_service(ROOT / "configs" / "serve.yaml") if started_here else args.url.rstrip("/")
    capacities: dict[str, Capacity] = {}
    runs: list[OverloadRun] = []
    replicas = None
    try:
        idle = probe_stats(idle_probes(url, idle_s))
        print(f"idle /healthz: {idle}", flush=True)
        for route in chosen:
            capacity = asyncio.run(measure_capacity(url, route, seconds=capacity_seconds, warm_up=warm_up))
            capacities[route.name] = capacity
            print(f"{route.path} capacity: {capacity}", flush=True)
            if capacity.requests == 0:
                print(f"{route.path}: no successful request, no overload run", flush=True)
                continue
            for multiplier in multipliers:
                time.sleep(cool_down)  # the queues of the last run empty
                run = overload_run(url, route, capacity.requests_per_s, multiplier, seconds)
                runs.append(run)
                s = run.summary
                print(
                    f"{route.path} {multiplier:g}x: offered {s['offered_per_s']:.1f}/s, "
                    f"sent {s['sent_per_s']:.1f}/s, "
                    f"goodput {s['goodput_per_s']:.1f}/s ({s['goodput_vs_capacity']:.0%}), "
                    f"shed {fmt_share(s['shed_share'])}, statuses {s['status_counts']}, "
                    f"accepted p99 {fmt_ms(s['accepted_p99_ms'])} ms, healthz {s['healthz']}, "
                    f"generator CPU {s['generator_cpu']:.0%}, lag p99 {fmt_ms(s['generator_lag_p99_ms'])} ms",
                    flush=True,
                )
            time.sleep(cool_down)
        if started_here:
            replicas = serve_replicas()
    finally:
        if started_here:
            from ray import serve

            serve.shutdown()

    report = render(
        runs, capacities, chosen, idle, url=None if started_here else url, seconds=seconds,
        capacity_seconds=capacity_seconds, warm_up=warm_up, replicas=replicas,
    )  # fmt: skip
    print(report, flush=True)
    RAW_JSON.parent.mkdir(parents=True, exist_ok=True)
    RAW_JSON.write_text(
        json.dumps(
            {
                "machine": machine(),
                "date": time.strftime("%Y-%m-%d"),
                "url": url,
                "quick": args.quick,
                "settings": {
                    "seconds": seconds,
                    "capacity_seconds": capacity_seconds,
                    "warm_up_s": warm_up,
                    "clients": CLIENTS,
                    "max_outstanding": MAX_OUTSTANDING,
                    "client_timeout_s": CLIENT_TIMEOUT_S,
                    "probe_interval_s": PROBE_INTERVAL_S,
                    "probe_timeout_s": PROBE_TIMEOUT_S,
                },
                "idle_healthz": idle,
                "capacity": {name: asdict(c) for name, c in capacities.items()},
                "replicas_at_end": replicas,
                "runs": [
                    {
                        "route": r.route,
                        "multiplier": r.multiplier,
                        "summary": r.summary,
                        "answers": [
                            [round(a.sent_s, 4), round(a.latency_s, 4), a.status, a.retry_after, a.error_json]
                            for a in r.answers
                        ],
                        "probes": [[round(p.at_s, 3), round(p.latency_s, 4), p.status] for p in r.probes],
                    }
                    for r in runs
                ],
            },
            default=str,
        )
    )
    print(f"raw results: {RAW_JSON.relative_to(ROOT)}", flush=True)
    if not (args.quick or args.no_write):
        write_section(args.out, HEADING, report)


if __name__ == "__main__":
    main()
