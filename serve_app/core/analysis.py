"""PDF analyses as data: the options a caller gives and the results they get back (no Ray).

The same models answer ``POST /v1/detect``, make up a job's result, and travel through the handles of
``client.analyze_pdf``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serve_app.core.arrange import arrange_regions
from serve_app.core.catalog import MODEL_NAME_PATTERN, ModelVersion
from serve_app.core.clustering import Clustering
from serve_app.core.errors import InvalidInput
from serve_app.core.layout import Box, Region
from serve_app.core.pdf import PageInfo, Word, text_in_box
from serve_app.core.schemas import describe_errors


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalyzeOptions(_Model):
    """How to analyse a PDF (query parameters of /v1/detect and /v1/jobs, arguments of the client)."""

    # Lax types on purpose: query strings arrive as text ("150", "true"), and pydantic parses them.
    dpi: int = Field(
        default=72, ge=36, le=300, description="Rendering resolution; the model sees pages at 448 px."
    )
    score_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Drop regions below this score (server default if null)."
    )
    cluster: bool = Field(
        default=False, description="Also embed every region's text and group similar regions."
    )
    model: str | None = Field(
        default=None,
        pattern=MODEL_NAME_PATTERN,
        description="The detectron2 model to use, by name (GET /v1/models lists them; null: the default).",
    )
    masks: bool = Field(
        default=False,
        description="Also return each region's mask outline as polygons in PDF points (models with masks).",
    )


class DetectOptions(AnalyzeOptions):
    """``POST /v1/detect``'s options: the analysis options and the answer's format."""

    format: Literal["json", "markdown"] = Field(
        default="json",
        description="json: AnalyzeResult; markdown: the document as Markdown (text/markdown).",
    )

    def analysis(self) -> AnalyzeOptions:
        return AnalyzeOptions.model_validate(self.model_dump(exclude={"format"}))


class JobOptions(AnalyzeOptions):
    """``POST /v1/jobs``'s options: the analysis options and where to announce the end."""

    callback_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        # Documented, not enforced here: the callback URL guard checks it and says what is wrong.
        json_schema_extra={"pattern": r"^[hH][tT][tT][pP][sS]?://[^\s/?#@]+"},
        description=(
            "An http(s) URL that gets the job's final state (POST, JSON, signed: Serve-App-Signature "
            "t=<unix time>,v1=<HMAC-SHA256 of '<t>.<body>'>), retried until it answers 2xx "
            "(docs/operations.md)."
        ),
    )

    def analysis(self) -> AnalyzeOptions:
        return AnalyzeOptions.model_validate(self.model_dump(exclude={"callback_url"}))


class RegionResult(_Model):
    """A layout region: box in PDF points (x0, y0, x1, y1; origin top-left) and the text inside it."""

    order: int = Field(
        ge=0,
        description=(
            "0-based position in the page's reading order (columns left to right, each top to bottom; "
            "a caption right after its figure or table). The page lists its regions in this order."
        ),
    )
    label: str
    score: float = Field(
        description=(
            "The model's confidence; 1.0 for a ruled table or a drawing taken from the PDF itself (kept "
            "whatever score_threshold says), 0.5 for text lines no detection held, grouped into a region "
            "(left out when score_threshold is above 0.5)."
        )
    )
    box: tuple[float, float, float, float]
    text: str
    mask: list[list[tuple[float, float]]] | None = Field(
        default=None,
        description="Outline polygons of the region's mask in PDF points, largest first (with masks=true).",
    )


class PageResult(_Model):
    """One page: 1-based number, size in points, regions in reading order."""

    number: int
    width: float
    height: float
    regions: list[RegionResult]

    @model_validator(mode="before")
    @classmethod
    def _number_stored_regions(cls, data: Any) -> Any:
        """Pages stored before regions had an ``order`` (a job resumed or read back after an upgrade):
        their regions are numbered as listed."""
        if isinstance(data, dict) and isinstance(data.get("regions"), list):
            regions = [
                {"order": i, **r} if isinstance(r, dict) and "order" not in r else r
                for i, r in enumerate(data["regions"])
            ]
            data = {**data, "regions": regions}
        return data


class RegionRef(_Model):
    """A region by page number and position in that page's ``regions``."""

    page: int
    region: int
    text: str


class RegionCluster(_Model):
    size: int
    representative: RegionRef
    members: list[RegionRef]


class RegionClusters(_Model):
    """Regions whose texts mean similar things, across the whole document."""

    clusters: list[RegionCluster]
    unclustered: list[RegionRef]


class AnalyzeResult(_Model):
    """The answer of /v1/detect and the result of a job."""

    model: ModelVersion = Field(description="The model version that found the regions (provenance).")
    page_count: int
    pages: list[PageResult]
    clusters: RegionClusters | None = None


def page_result(
    info: PageInfo,
    regions: Sequence[Region],
    words: Sequence[Word],
    *,
    arrange: bool = True,
    graphics: Sequence[Box] = (),
    tables: Sequence[Box] = (),
    points_per_pixel: float | None = None,
) -> PageResult:
    """Attach the text layer's words to the detected regions of one page, listed in reading order.

    With ``arrange`` (the default) the regions are first arranged on the words, ``graphics`` and ``tables``
    (``arrange_regions``: ruled tables, unclaimed drawings made figures, figures snapped to their graphics,
    regions to whole lines, empty regions dropped, titles told by their fonts, text no region holds made
    regions, running heads dropped, paragraph fragments merged, reading order, lists from item markers;
    with PubLayNet's labels);
    ``points_per_pixel``: the page image's scale, so that a page without detections still gets its ruled
    tables, drawings and text as regions (``arrange_regions``; None: it gets none).
    ``arrange=False`` takes ``regions`` as they are, for a caller that arranged them already.
    """
    if arrange:
        regions = arrange_regions(
            regions,
            words,
            page_width=info.width_pt,
            page_height=info.height_pt,
            graphics=graphics,
            tables=tables,
            points_per_pixel=points_per_pixel,
        )
    return PageResult(
        number=info.number,
        width=info.width_pt,
        height=info.height_pt,
        regions=[
            RegionResult(
                order=i,
                label=r.label,
                score=round(r.score, 4),
                box=(
                    round(r.box_pt[0], 2),
                    round(r.box_pt[1], 2),
                    round(r.box_pt[2], 2),
                    round(r.box_pt[3], 2),
                ),
                text=text_in_box(words, r.box_pt),
                mask=None
                if r.mask_pt is None
                else [[(round(x, 2), round(y, 2)) for x, y in polygon] for polygon in r.mask_pt],
            )
            for i, r in enumerate(regions)
        ],
    )


def region_texts(pages: Sequence[PageResult], *, max_chars: int) -> list[RegionRef]:
    """Regions with text, in document order, texts cut to ``max_chars`` (what gets embedded)."""
    refs = []
    for page in pages:
        for i, region in enumerate(page.regions):
            text = " ".join(region.text.split())
            if text:
                refs.append(RegionRef(page=page.number, region=i, text=text[:max_chars]))
    return refs


def region_clusters(refs: Sequence[RegionRef], clustering: Clustering) -> RegionClusters:
    """Map a clustering of ``refs`` (row indices) back to regions."""
    return RegionClusters(
        clusters=[
            RegionCluster(
                size=len(c.members),
                representative=refs[c.representative],
                members=[refs[i] for i in c.members],
            )
            for c in clustering.clusters
        ],
        unclustered=[refs[i] for i in clustering.unclustered],
    )


def parse_options(params: Mapping[str, str]) -> AnalyzeOptions:
    """Options from URL query parameters (strings, as the ingress receives them); unknown names or bad
    values raise ``InvalidInput`` with the message the ingress answers with."""
    try:
        return AnalyzeOptions.model_validate(dict(params))
    except ValidationError as exc:
        errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]
        raise InvalidInput(
            "invalid query parameters: " + describe_errors(errors, known=list(AnalyzeOptions.model_fields))
        ) from None
