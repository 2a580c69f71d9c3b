"""Labelled real pages on disk: page PNGs and COCO ``annotations.json`` for one split of the corpus.

CLI (after ``python -m serve_app.training.real.corpus``)::

    python -m serve_app.training.real.dataset --corpus build/real/texlive --split test --out build/real/test

Pages are drawn per document with a fixed seed (at most ``--pages-per-doc`` from each), labelled by
``serve_app.training.real.labeller`` and kept unless the labeller refuses them; documents are visited
round-robin by group so that one big manual cannot fill the set. Each COCO image records its source PDF
and page. The split is by group (``corpus.split_of``): no group has pages in both splits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pymupdf

from serve_app.core.layout import LABELS
from serve_app.training.real.corpus import CorpusPdf, split_of
from serve_app.training.real.labeller import PageLabels, document_style, label_page
from serve_app.training.synth.dataset import coco_annotation

DPI = 72
PAGE_SECONDS = 10  # a page that takes longer to label (a dense vector drawing) is refused


class PageTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise ``PageTimeout`` in the main thread after ``seconds`` (SIGALRM; the CLI runs single-threaded)."""

    def expire(_signum: int, _frame: object) -> None:
        raise PageTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def read_index(corpus: Path) -> list[CorpusPdf]:
    return [CorpusPdf(**row) for row in json.loads((corpus / "index.json").read_text())]


def candidate_pages(
    pdfs: Sequence[CorpusPdf], *, split: str, pages_per_doc: int, seed: int
) -> Iterator[tuple[CorpusPdf, list[int]]]:
    """(pdf, page indices to try) for the split's documents, round-robin over groups."""
    rng = random.Random(seed)
    by_group: dict[str, list[CorpusPdf]] = {}
    for pdf in pdfs:
        if split_of(pdf.group) == split and pdf.pages > 0:
            by_group.setdefault(pdf.group, []).append(pdf)
    queues = [by_group[g] for g in sorted(by_group)]
    rng.shuffle(queues)
    for docs in queues:
        rng.shuffle(docs)
    while queues:
        for docs in list(queues):
            pdf = docs.pop()
            if not docs:
                queues.remove(docs)
            pages = list(range(pdf.pages))
            rng.shuffle(pages)
            yield pdf, pages[: pages_per_doc * 3]  # a few spares for refused pages


def build(
    corpus: Path, out: Path, *, split: str, max_pages: int, pages_per_doc: int, seed: int
) -> dict[str, Any]:
    """Write ``out/images/*.png`` and ``out/annotations.json``; return the build report."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    refused: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    documents = 0
    scale = DPI / 72.0
    for pdf, pages in candidate_pages(
        read_index(corpus), split=split, pages_per_doc=pages_per_doc, seed=seed
    ):
        if len(images) >= max_pages:
            break
        kept = 0
        try:
            doc = pymupdf.open(corpus / "root" / pdf.path)
        except (RuntimeError, ValueError, OSError):
            refused["unreadable"] += 1
            continue
        with doc:
            try:
                style = document_style(doc)
            except (RuntimeError, ValueError):
                refused["unreadable"] += 1
                continue
            for number in pages:
                if kept >= pages_per_doc or len(images) >= max_pages:
                    break
                page = doc.load_page(number)
                try:
                    with time_limit(PAGE_SECONDS):
                        result: PageLabels = label_page(page, style)
                except PageTimeout:
                    refused[f"over {PAGE_SECONDS} s to label"] += 1
                    continue
                except (RuntimeError, ValueError) as exc:
                    refused[f"error: {type(exc).__name__}"] += 1
                    continue
                if result.refused:
                    refused[result.refused] += 1
                    continue
                image_id = len(images) + 1
                name = f"images/{image_id:05d}.png"
                pix = page.get_pixmap(dpi=DPI, alpha=False)
                pix.save(out / name)
                ox, oy = page.rect.x0, page.rect.y0
                images.append(
                    {
                        "id": image_id,
                        "file_name": name,
                        "width": pix.width,
                        "height": pix.height,
                        "source": pdf.path,
                        "page": number + 1,
                        "group": pdf.group,
                    }
                )
                for region in result.regions:
                    x0, y0, x1, y1 = region.box
                    box = (x0 - ox, y0 - oy, x1 - ox, y1 - oy)  # on the rendered page
                    ann = coco_annotation(
                        region.label, box, len(annotations) + 1, image_id, scale, (pix.width, pix.height)
                    )
                    if ann["bbox"][2] <= 0 or ann["bbox"][3] <= 0:
                        continue
                    labels[region.label] += 1
                    annotations.append(ann)
                kept += 1
                if len(images) % 250 == 0:
                    print(f"{len(images)} pages labelled ({pdf.path})", flush=True)
        documents += kept > 0
        pymupdf.TOOLS.reset_mupdf_warnings()
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(LABELS)],
    }
    (out / "annotations.json").write_text(json.dumps(coco) + "\n")
    report = {
        "split": split,
        "pages": len(images),
        "documents": documents,
        "groups": len({img["group"] for img in images}),
        "regions": dict(sorted(labels.items())),
        "refused": dict(refused.most_common()),
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=Path("build/real/texlive"))
    parser.add_argument("--split", choices=("train", "test"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-pages", type=int, default=400)
    parser.add_argument("--pages-per-doc", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pymupdf.TOOLS.mupdf_display_errors(False)  # damaged annotations are common and harmless here
    report = build(
        args.corpus,
        args.out,
        split=args.split,
        max_pages=args.max_pages,
        pages_per_doc=args.pages_per_doc,
        seed=args.seed,
    )
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
