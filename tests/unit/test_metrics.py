"""Box-matching metrics used to evaluate the layout detector (serve_app.training.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from serve_app.training.metrics import contained_counts, iou_matrix, matched_fraction


def test_iou_matrix() -> None:
    ious = iou_matrix(
        np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    )
    np.testing.assert_allclose(ious, [[1.0, 50 / 150, 0.0]])


def test_matched_fraction_needs_label_and_iou_one_to_one() -> None:
    truth = [("text", (0, 0, 10, 10)), ("text", (0, 20, 10, 30)), ("title", (0, 40, 10, 45))]
    predicted = [("text", (0, 0, 10, 10)), ("text", (0, 1, 10, 11)), ("list", (0, 40, 10, 45))]
    # Two predictions overlap the first text box, each matches at most one box; the title's label is wrong.
    assert matched_fraction(truth, predicted) == pytest.approx(1 / 3)
    assert matched_fraction(truth, [(lab, box) for lab, box in truth]) == 1.0
    assert matched_fraction([], predicted) == 1.0


def test_contained_counts_ask_whether_a_box_is_inside_a_region_of_its_label() -> None:
    truth = [("text", (0, 0, 10, 10)), ("text", (0, 20, 10, 30)), ("title", (0, 40, 10, 45))]
    # One text region over both paragraphs holds each; the title sits in a text region: not held.
    predicted = [("text", (0, 0, 10, 30)), ("text", (0, 40, 10, 45))]
    assert contained_counts(truth, predicted) == {"text": (2, 2), "title": (0, 1)}
    # A text region that leaves out a fifth of the paragraph does not hold it at 0.9, does at 0.8.
    cut = [("text", (0, 0, 8, 10))]
    assert contained_counts(truth[:1], cut) == {"text": (0, 1)}
    assert contained_counts(truth[:1], cut, min_inside=0.8) == {"text": (1, 1)}
    assert contained_counts([], predicted) == {}
