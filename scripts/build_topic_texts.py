"""Build a small labelled topic-text dataset from Debian package short descriptions.

Reads ``apt-cache dumpavail`` output (run via subprocess, or from ``--input``),
keeps end-user packages from a handful of clearly distinct Debian sections,
filters out boilerplate descriptions, and writes a deterministic sample of
texts per topic as JSON Lines (``{"text", "label", "source"}``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Debian section -> topic label.
TOPICS: dict[str, str] = {
    "database": "database",
    "fonts": "fonts",
    "games": "games",
    "graphics": "graphics",
    "hamradio": "hamradio",
    "mail": "mail",
    "math": "math",
    "sound": "sound",
}

DEFAULT_PER_LABEL = 50
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "data" / "topic_texts.jsonl"
MIN_WORDS = 3

# Package names of libraries (incl. language-ecosystem ones), add-ons and
# dev/doc/debug/data/common split-outs.
_BAD_NAME = re.compile(
    r"^(lib|python3?-|ruby-|node-|golang-|r-cran-|r-bioc-)"
    r"|-(dev|doc|docs|dbg|dbgsym|data|database|databases|common|examples|test|tests"
    r"|l10n|i18n|images|levels|maps|music|sounds|textures|gfx)$"
    r"|-(dev|doc|data|database|common|module|modules|plugin|plugins)-"
)
# Generic / boilerplate wording that says little about the topic.
_GENERIC = re.compile(
    r"\b("
    r"librar(y|ies)|modules?|plugins?|plug-ins?|bindings?|transition(al)?|dummy"
    r"|meta ?packages?|meta-packages?|documentation|development (files|kit)|SDK|API"
    r"|debug(ging)? symbols|architecture-independent|arch-independent|transit\. pkg"
    r"|(data|common|shared|example|test|image|level|language|texture) files"
    r"|game data|data for|(sound|support|palette|stamp) files?|demo song|skins?"
    r"|translations?"
    r")\b",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")

# Hand-picked packages whose Debian section does not match what their
# description is about (e.g. chess tablebases filed under "database").
EXCLUDED_PACKAGES: frozenset[str] = frozenset(
    {
        "bucklespring",  # games: keyboard sound emulator
        "fonts-circos-symbols",  # fonts: "plotter for visualizing data"
        "fonts-powerline",  # fonts: "prompt and statusline utility"
        "gamescope",  # games: Wayland micro-compositor
        "gaviotatb",  # database: chess endgame tablebases
        "gfxreconstruct",  # graphics: Vulkan API capture tool
        "granule",  # games: vocabulary flashcards
        "octave-cgi",  # math: web CGI helper
        "pd-3dp",  # graphics: Pure Data OpenGL externals
        "pd-syslog",  # sound: syslog for Pure Data
        "polygen",  # games: random sentence generator
        "surgescript",  # graphics: scripting language
        "tdfsb",  # games: 3D file browser
        "themonospot",  # graphics: video file scanner
        "tpp",  # graphics: text presentation program
        "umegaya",  # database: YAML metadata gatherer
    }
)


@dataclass(frozen=True)
class Package:
    """The few fields of one ``apt-cache dumpavail`` stanza that are used."""

    name: str
    source: str
    section: str
    description: str


def parse_stanzas(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Yield deb822 stanzas as ``{field: first-line value}`` dicts."""
    fields: dict[str, str] = {}
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            if fields:
                yield fields
                fields = {}
            continue
        if line[0] in " \t":  # continuation line (long description, tags, ...)
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    if fields:
        yield fields


def to_package(fields: dict[str, str]) -> Package | None:
    """Convert a stanza to a ``Package``; ``None`` if a field is missing."""
    name = fields.get("Package")
    description = fields.get("Description")
    if not name or not description:
        return None
    # "Source: foo (1.2-3)" -> "foo"; binary name when the field is absent.
    source = fields.get("Source", name).split()[0]
    section = fields.get("Section", "").rsplit("/", 1)[-1]  # drop contrib/ etc.
    # Collapse runs of blanks; drop a stray leading colon (seen in the wild).
    text = _SPACE.sub(" ", description).strip().lstrip(":").strip()
    return Package(name, source, section, text)


def is_usable(pkg: Package) -> bool:
    """Whether a package's short description is a specific, on-topic text."""
    if pkg.name in EXCLUDED_PACKAGES or _BAD_NAME.search(pkg.name):
        return False
    if len(pkg.description.split()) < MIN_WORDS:
        return False
    return not _GENERIC.search(pkg.description)


def _rank(pkg: Package) -> str:
    """Stable pseudo-random sort key derived from the package name."""
    return hashlib.sha256(pkg.name.encode("utf-8")).hexdigest()


def spread(items: list[Package], k: int) -> list[Package]:
    """Take ``k`` items spread over ``items``, in their original order.

    Picks the ``k`` packages with the smallest SHA-256 of their name: a
    deterministic sample across the whole alphabet that, unlike "every n-th",
    only changes locally when a package enters or leaves the candidate pool.
    """
    chosen = {pkg.name for pkg in sorted(items, key=_rank)[:k]}
    return [pkg for pkg in items if pkg.name in chosen]


def select(packages: Iterable[Package], per_label: int) -> list[dict[str, str]]:
    """Filter, deduplicate and sample packages into labelled records."""
    seen_texts: set[str] = set()
    seen_sources: set[str] = set()
    by_label: dict[str, list[Package]] = {label: [] for label in TOPICS.values()}
    for pkg in sorted(packages, key=lambda p: p.name):
        label = TOPICS.get(pkg.section)
        if label is None or not is_usable(pkg):
            continue
        key = pkg.description.casefold()
        # One text per source package, so templated families
        # (e.g. one binary per language) do not dominate a topic.
        if key in seen_texts or pkg.source in seen_sources:
            continue
        seen_texts.add(key)
        seen_sources.add(pkg.source)
        by_label[label].append(pkg)
    records = [
        {"text": pkg.description, "label": label, "source": f"debian:{pkg.name}"}
        for label, candidates in by_label.items()
        for pkg in spread(candidates, per_label)
    ]
    records.sort(key=lambda r: (r["label"], r["text"].casefold(), r["text"]))
    return records


def read_dumpavail(path: Path | None) -> list[str]:
    """Read ``apt-cache dumpavail`` output from ``path`` or by running it."""
    if path is not None:
        return path.read_text(encoding="utf-8").splitlines()
    result = subprocess.run(
        ["apt-cache", "dumpavail"],
        check=True,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    return result.stdout.splitlines()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input",
        type=Path,
        help="saved `apt-cache dumpavail` output (default: run apt-cache)",
    )
    parser.add_argument(
        "--output",
        default=str(DEFAULT_OUTPUT),
        help="JSON Lines output path, or '-' for stdout (default: %(default)s)",
    )
    parser.add_argument(
        "--per-label",
        type=int,
        default=DEFAULT_PER_LABEL,
        help="texts per topic (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    packages = [
        pkg for fields in parse_stanzas(read_dumpavail(args.input)) if (pkg := to_package(fields)) is not None
    ]
    records = select(packages, args.per_label)
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if args.output == "-":
        sys.stdout.write(body)
    else:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(body, encoding="utf-8")

    counts = Counter(r["label"] for r in records)
    for label in sorted(counts):
        print(f"{label}\t{counts[label]}", file=sys.stderr)
    print(f"total\t{len(records)}", file=sys.stderr)
    short = [label for label in TOPICS.values() if counts[label] < args.per_label]
    if short:
        print(f"warning: fewer than {args.per_label} texts for: {short}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
