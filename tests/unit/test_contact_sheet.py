"""The per-page score that picks the failure pictures (pure logic)."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from serve_app.training.real.contact_sheet import COLOURS, page_f1, paletted


def test_page_f1_counts_same_label_matches_at_iou_half() -> None:
    truth = [("text", [0, 0, 100, 20]), ("title", [0, 30, 100, 10]), ("figure", [0, 50, 100, 100])]
    assert page_f1(truth, truth) == 1.0
    # Right box, wrong label: no match. A title shifted by 40% of its width: IoU 60/140, no match.
    found = [("list", [0, 0, 100, 20]), ("title", [40, 30, 100, 10])]
    assert page_f1(truth, found) == pytest.approx(0.0)
    found = [("text", [0, 0, 100, 20]), ("title", [20, 30, 100, 10])]  # IoU 80/120 for the title
    assert page_f1(truth, found) == pytest.approx(2 * 2 / 5)


def test_page_f1_takes_each_region_once() -> None:
    truth = [("text", [0, 0, 100, 20])]
    twice = [("text", [0, 0, 100, 20]), ("text", [0, 0, 100, 19])]
    assert page_f1(truth, twice) == pytest.approx(2 * 1 / 3)
    assert page_f1([], []) == 1.0
    assert page_f1(truth, []) == 0.0 and page_f1([], truth) == 0.0


def test_paletted_sheet_keeps_the_label_colours() -> None:
    sheet = Image.new("RGB", (60, 20), "white")
    draw = ImageDraw.Draw(sheet)
    for k, colour in enumerate(COLOURS.values()):
        draw.rectangle((k * 12, 0, k * 12 + 10, 10), fill=colour)
    draw.rectangle((0, 12, 59, 19), fill=(120, 120, 120))  # page grey
    colours = {rgb for _, rgb in paletted(sheet).convert("RGB").getcolors()}
    assert set(COLOURS.values()) <= colours and (120, 120, 120) in colours
