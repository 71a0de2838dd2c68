"""Shapes, spans, text and numbers merged on toy items whose right answer is known."""

from __future__ import annotations

import pytest

from app.consensus.geometry import merge_boxes, merge_keypoints, merge_polygons
from app.consensus.numbers import merge_numbers
from app.consensus.spans import merge_spans
from app.consensus.text import merge_text


def box(x: float, y: float, w: float = 10, h: float = 10, label: str = "car") -> dict[str, object]:
    return {"x": x, "y": y, "width": w, "height": h, "label": label}


def square(x: float, size: float = 10, label: str = "roof") -> dict[str, object]:
    return {"points": [[x, 0], [x + size, 0], [x + size, size], [x, size]], "label": label}


def test_boxes_drawn_by_most_are_averaged_and_a_lone_box_is_dropped() -> None:
    answers = [
        [box(10, 10, 20, 20)],
        [box(12, 10, 20, 22)],
        [box(11, 11, 20, 20), box(200, 200, 5, 5)],  # the second box: nobody else saw it
    ]
    merged = merge_boxes(answers)
    assert len(merged.value) == 1
    assert merged.value[0] == {
        "x": pytest.approx(11.0),
        "y": pytest.approx(31 / 3),
        "width": pytest.approx(20.0),
        "height": pytest.approx(62 / 3),
        "label": "car",
    }
    # Each answer graded against the merged box (F1 of matches at IoU >= 0.5).
    assert merged.scores == pytest.approx((1.0, 1.0, 2 / 3))
    assert merged.confidence == pytest.approx((1 + 1 + 2 / 3) / 3)


def test_box_position_and_support_follow_the_annotators_weights() -> None:
    answers = [[box(0, 0)], [box(2, 0)], []]
    trusted = merge_boxes(answers, [0.9, 0.1, 0.1])
    assert trusted.value[0]["x"] == pytest.approx(0.2)  # (0 * 0.9 + 2 * 0.1) / 1.0
    # The same two boxes from two weak annotators against one strong "nothing here".
    assert merge_boxes(answers, [0.1, 0.1, 0.9]).value == []


def test_two_close_objects_drawn_by_everyone_stay_two_boxes() -> None:
    # IoU of the two objects is 0.54, above the threshold: only the rule that a cluster holds
    # one box per annotator keeps them apart.
    answers = [[box(0, 0), box(3, 0)], [box(0, 0), box(3, 0)]]
    assert [b["x"] for b in merge_boxes(answers).value] == [0.0, 3.0]


def test_a_box_drawn_twice_by_one_annotator_counts_once() -> None:
    answers = [[box(0, 0), box(1, 0)], [box(0, 0)]]
    assert merge_boxes(answers).value == [box(0.0, 0.0, 10.0, 10.0)]


def test_boxes_of_different_labels_never_merge_and_the_maximum_keeps_the_best_supported() -> None:
    answers = [[box(0, 0, label="car")], [box(0, 0, label="bus")], [box(0, 0, label="car")]]
    assert [b["label"] for b in merge_boxes(answers).value] == ["car"]
    answers = [[box(0, 0), box(50, 0)], [box(0, 0), box(50, 0)], [box(0, 0)]]
    assert [b["x"] for b in merge_boxes(answers, maximum=1).value] == [0.0]


def test_polygons_merge_to_the_member_closest_to_the_others() -> None:
    answers = [[square(0)], [square(1)], [square(2)], [square(40)]]
    merged = merge_polygons(answers)
    assert merged.value == [square(1)]  # the middle outline; the far one is a lone minority
    assert merged.scores[1] == 1.0


def test_keypoints_within_tolerance_are_averaged() -> None:
    answers = [
        [{"x": 10, "y": 10, "label": "nose"}],
        [{"x": 14, "y": 10, "label": "nose"}],
        [{"x": 90, "y": 90, "label": "nose"}],
    ]
    merged = merge_keypoints(answers, tolerance=5)
    assert merged.value == [{"x": 12.0, "y": 10.0, "label": "nose"}]


def test_spans_marked_by_a_majority_are_kept() -> None:
    per = {"start": 0, "end": 5, "label": "PER"}
    org = {"start": 10, "end": 14, "label": "ORG"}
    org_wider = {"start": 9, "end": 14, "label": "ORG"}
    answers = [[per, org], [per, org], [per, org_wider]]
    merged = merge_spans(answers)
    assert merged.value == [per, org]
    assert merged.scores == pytest.approx((1.0, 1.0, 0.5))


def test_overlapping_spans_keep_the_best_supported_when_overlaps_are_forbidden() -> None:
    long = {"start": 0, "end": 10, "label": "LOC"}
    short = {"start": 5, "end": 10, "label": "LOC"}
    answers = [[long, short], [long, short], [long]]
    assert merge_spans(answers).value == [long, short]
    assert merge_spans(answers, allow_overlap=False).value == [long]


def test_text_merges_to_the_answer_with_the_lowest_mean_error_to_the_others() -> None:
    answers = ["the cat sat", "the cat sat", "teh cat sat", "a dog ran"]
    merged = merge_text(answers)
    assert merged.value == "the cat sat"
    assert merged.scores[:2] == (1.0, 1.0)
    # Normalised: case and spaces do not count; of equal candidates the alphabetically first.
    assert merge_text(["The  Cat", "the cat"]).value == "The  Cat"
    assert merge_text(["The  Cat", "the cat"], normalize=False).value == "The  Cat"
    assert merge_text(["b", "a"]).value == "a"


def test_text_follows_the_weights() -> None:
    answers = ["alpha", "beta", "betas"]
    assert merge_text(answers).value == "betas"  # 1 − CER: beta 0.8 and alpha 0 against it
    assert merge_text(answers, [0.8, 0.1, 0.1]).value == "alpha"
    assert merge_text(answers, [0.1, 0.8, 0.1]).value == "beta"


def test_numbers_merge_to_the_weighted_median_which_one_outlier_cannot_move() -> None:
    merged = merge_numbers([3, 4, 5, 1000], tolerance=1)
    assert merged.value == 4  # lower median: one of the answers, an integer
    assert merged.scores == (1.0, 1.0, 1.0, 0.0)
    assert merged.confidence == pytest.approx(0.75)
    assert merge_numbers([3, 4, 5], [0.1, 0.1, 0.8]).value == 5
