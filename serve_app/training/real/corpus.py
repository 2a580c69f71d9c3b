"""The real-page corpus: Debian's TeX Live documentation packages, unpacked without installing them.

CLI (needs ``apt-get`` and a Debian mirror; run ``apt-get update`` once first)::

    python -m serve_app.training.real.corpus --out build/real/texlive

downloads each package with ``apt-get download``, unpacks it with ``dpkg-deb -x`` into ``<out>/root`` and
writes ``<out>/index.json``: every PDF with its package, its group and its page count. A group is a
documentation directory's name up to the first ``-`` or ``_`` (``datetime2-norsk`` and
``datetime2-swedish`` are one group): near-duplicates share a group, and splits are made by group.
``texlive-publishers-doc`` is never fetched: it is held out to judge the model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pymupdf

PACKAGES: tuple[str, ...] = (
    "texlive-latex-extra-doc",
    "texlive-science-doc",
    "texlive-latex-recommended-doc",
    "texlive-pictures-doc",
    "texlive-humanities-doc",
)
HELD_OUT = "texlive-publishers-doc"
DOC_ROOT = Path("usr/share/doc/texlive-doc")
TEST_SHARE = 10  # one group in TEST_SHARE goes to the test split


@dataclass(frozen=True)
class CorpusPdf:
    """One PDF of the corpus: path relative to the unpacked root, its package, group and pages."""

    path: str
    package: str
    group: str
    pages: int


def group_of(path: Path) -> str:
    """The near-duplicate group of a documentation file: its directory's name up to ``-`` or ``_``."""
    return re.split(r"[-_]", path.parent.name, maxsplit=1)[0].lower()


def split_of(group: str) -> str:
    """``test`` for one group in ``TEST_SHARE`` (by a stable hash of its name), else ``train``."""
    digest = int(hashlib.sha1(group.encode()).hexdigest(), 16)
    return "test" if digest % TEST_SHARE == 0 else "train"


def fetch(out: Path, packages: Sequence[str] = PACKAGES) -> None:
    """Download and unpack ``packages`` into ``out/debs`` and ``out/root`` (skips what is there)."""
    if HELD_OUT in packages:
        raise ValueError(f"{HELD_OUT} is held out for evaluation; it must not be fetched for training")
    debs = out / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for package in packages:
        marker = out / "root" / f".{package}.unpacked"
        if marker.exists():
            continue
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        (deb,) = sorted(debs.glob(f"{package}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(out / "root")], check=True)
        listing = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, capture_output=True, text=True)
        marker.write_text(listing.stdout)


def index(out: Path, packages: Sequence[str] = PACKAGES) -> list[CorpusPdf]:
    """Every readable PDF of the unpacked packages, sorted by path."""
    found: list[CorpusPdf] = []
    for package in packages:
        marker = out / "root" / f".{package}.unpacked"
        for line in marker.read_text().splitlines():
            name = line.split()[-1].removeprefix("./")
            if not name.lower().endswith(".pdf"):
                continue
            path = out / "root" / name
            try:
                with pymupdf.open(path) as doc:
                    pages = doc.page_count
            except (RuntimeError, ValueError, OSError):
                continue
            rel = Path(name).relative_to(DOC_ROOT) if Path(name).is_relative_to(DOC_ROOT) else Path(name)
            found.append(CorpusPdf(path=name, package=package, group=group_of(rel), pages=pages))
    pymupdf.TOOLS.reset_mupdf_warnings()
    return sorted(found, key=lambda pdf: pdf.path)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("build/real/texlive"))
    args = parser.parse_args(argv)
    fetch(args.out)
    pdfs = index(args.out)
    (args.out / "index.json").write_text(json.dumps([asdict(p) for p in pdfs], indent=0) + "\n")
    groups = {p.group for p in pdfs}
    test = {g for g in groups if split_of(g) == "test"}
    print(
        f"{len(pdfs)} PDFs, {sum(p.pages for p in pdfs)} pages, {len(groups)} groups "
        f"({len(test)} in the test split) -> {args.out / 'index.json'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
