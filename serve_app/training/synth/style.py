"""Document-wide style: page size, columns, fonts, sizes, margins, header and footer, drawn from the seed."""

from __future__ import annotations

import random
from dataclasses import dataclass

from serve_app.training.synth.geometry import BLACK, Color
from serve_app.training.synth.text import random_title, random_word

PAGE_SIZES: dict[str, tuple[float, float]] = {"letter": (612.0, 792.0), "a4": (595.0, 842.0)}
MIN_GAP = 4.0  # minimum distance in points between any two layout regions
FONT_FAMILIES: dict[str, tuple[str, str, str]] = {
    "tiro": ("tiro", "tibo", "tiit"),
    "helv": ("helv", "hebo", "heit"),
    "cour": ("cour", "cobo", "coit"),
}
PALETTES: tuple[tuple[Color, ...], ...] = (
    ((0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16), (0.58, 0.4, 0.74)),
    ((0.2, 0.2, 0.2), (0.45, 0.45, 0.45), (0.65, 0.65, 0.65), (0.82, 0.82, 0.82), (0.1, 0.1, 0.1)),
    ((0.27, 0.46, 0.71), (0.36, 0.72, 0.36), (0.94, 0.68, 0.31), (0.85, 0.33, 0.31), (0.5, 0.5, 0.75)),
)


@dataclass(frozen=True)
class DocStyle:
    """Document-wide typographic and layout choices."""

    page_width: float
    page_height: float
    margin_left: float
    margin_right: float
    margin_top: float
    margin_bottom: float
    columns: int
    column_gap: float
    body_font: str
    bold_font: str
    italic_font: str
    body_size: float
    leading: float
    heading_font: str
    heading_size: float
    heading_color: Color
    title_font: str
    title_size: float
    caption_font: str
    caption_size: float
    justify: bool
    first_indent: float
    block_gap: float
    header_text: str
    header_size: float
    header_offset: float
    header_rule: bool
    header_on_first: bool
    footer_offset: float
    footer_align: str
    figure_prefix: str
    palette: tuple[Color, ...]

    @property
    def text_left(self) -> float:
        return self.margin_left

    @property
    def text_width(self) -> float:
        return self.page_width - self.margin_left - self.margin_right

    @property
    def column_width(self) -> float:
        return (self.text_width - (self.columns - 1) * self.column_gap) / self.columns

    @property
    def body_bottom(self) -> float:
        return self.page_height - self.margin_bottom


def make_style(rng: random.Random) -> DocStyle:
    """Draw a document-wide style: page size, columns, fonts, sizes, margins, header/footer."""
    width, height = PAGE_SIZES[rng.choice(sorted(PAGE_SIZES))]
    columns = 2 if rng.random() < 0.6 else 1
    family = rng.choices(("tiro", "helv", "cour"), weights=(55, 35, 10))[0]
    regular, bold, italic = FONT_FAMILIES[family]
    heading_family = FONT_FAMILIES[rng.choice((family, "helv", "tiro"))]
    body_size = rng.choice((9.0, 9.5, 10.0)) if columns == 2 else rng.choice((10.0, 10.5, 11.0, 12.0))
    side = rng.uniform(48, 72) if columns == 2 else rng.uniform(60, 95)
    return DocStyle(
        page_width=width,
        page_height=height,
        margin_left=side,
        margin_right=side + rng.uniform(-6, 6),
        margin_top=rng.uniform(58, 85),
        margin_bottom=rng.uniform(58, 85),
        columns=columns,
        column_gap=rng.uniform(14, 28),
        body_font=regular,
        bold_font=bold,
        italic_font=italic,
        body_size=body_size,
        leading=body_size * rng.uniform(1.12, 1.35),
        heading_font=heading_family[1],
        heading_size=body_size + rng.choice((0.0, 1.0, 2.0, 3.0)),
        heading_color=rng.choice((BLACK, BLACK, (0.1, 0.2, 0.5), (0.45, 0.05, 0.05))),
        title_font=heading_family[1],
        title_size=rng.uniform(15, 22),
        caption_font=rng.choice((regular, italic)),
        caption_size=body_size - rng.choice((0.0, 0.5, 1.0)),
        justify=rng.random() < 0.65,
        first_indent=rng.choice((0.0, 0.0, 10.0, 15.0)),
        block_gap=rng.uniform(MIN_GAP + 2, 12),
        header_text=_header_text(rng),
        header_size=rng.uniform(7, 9),
        header_offset=rng.uniform(18, 30),
        header_rule=rng.random() < 0.4,
        header_on_first=rng.random() < 0.3,
        footer_offset=rng.uniform(22, 34),
        footer_align=rng.choice(("center", "right", "outer")),
        figure_prefix=rng.choice(("Figure", "Fig.")),
        palette=rng.choice(PALETTES),
    )


def _header_text(rng: random.Random) -> str:
    journal = random_title(rng, rng.randint(2, 4))
    pages = f"{rng.randint(1, 99)}\u2013{rng.randint(100, 999)}"
    forms = (
        f"{journal} {rng.randint(1, 60)} ({rng.randint(1995, 2024)}) {pages}",
        f"{journal}, Vol. {rng.randint(1, 40)}, No. {rng.randint(1, 12)}",
        f"{random_word(rng).capitalize()} et al.",
        random_title(rng, rng.randint(3, 7)),
    )
    return rng.choice(forms)
