"""Grading of the controls issue 16 added, as decision tables computed by hand."""

from __future__ import annotations

from typing import Any

import pytest

from app.label_schema import ChoicesAttribute, RatingAttribute, TextAttribute, parse_label_schema
from app.label_schema.grading import (
    grade_boxes,
    grade_controls,
    grade_pairwise,
    grade_ranking,
    grade_segments,
    grade_spans,
    grade_taxonomy,
)


def seg(start: float, end: float, label: str = "speech") -> dict[str, Any]:
    return {"start": start, "end": end, "label": label}


@pytest.mark.parametrize(
    ("answer", "key", "score"),
    [
        ([seg(0, 8)], [seg(0, 10)], 1.0),  # IoU 8/10 >= 0.5
        ([seg(0, 4)], [seg(0, 10)], 0.0),  # IoU 4/10 < 0.5
        ([seg(0, 5)], [seg(0, 10)], 1.0),  # IoU 5/10: the boundary counts
        ([seg(0, 8), seg(20, 30)], [seg(0, 10)], 2 / 3),  # precision 1/2, recall 1
        ([seg(10, 20)], [seg(0, 10)], 0.0),  # touching is not overlapping
        ([seg(0, 10, "music")], [seg(0, 10)], 0.0),  # labels differ
        ([], [], 1.0),
        ([], [seg(0, 1)], 0.0),
        ("garbage", [seg(0, 1)], 0.0),
    ],
)
def test_segments_grade_by_interval_iou(answer: Any, key: Any, score: float) -> None:
    assert grade_segments(answer, key, iou_threshold=0.5) == pytest.approx(score)


def test_a_malformed_segment_key_raises() -> None:
    with pytest.raises(ValueError, match="malformed key"):
        grade_segments([], [seg(5, 1)], iou_threshold=0.5)


@pytest.mark.parametrize(
    ("answer", "key", "score"),
    [("left", "left", 1.0), ("right", "left", 0.0), ("up", "left", 0.0), (None, "right", 0.0)],
)
def test_pairwise_grades_by_agreement(answer: Any, key: str, score: float) -> None:
    assert grade_pairwise(answer, key) == score


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        (["a", "b", "c"], 1.0),
        (["c", "b", "a"], 0.0),  # every pair discordant: tau -1
        (["b", "a", "c"], 2 / 3),  # 1 of 3 pairs discordant: tau 1/3
        (["a", "c", "b"], 2 / 3),
        (["c", "a", "b"], 1 / 3),  # 2 of 3 discordant: tau -1/3
        (["a", "b"], 0.0),  # not the key's candidates
        (["a", "b", "d"], 0.0),
    ],
)
def test_rankings_grade_by_kendall_tau(answer: list[str], score: float) -> None:
    assert grade_ranking(answer, ["a", "b", "c"]) == pytest.approx(score)
    assert grade_ranking(["x"], ["x"]) == 1.0


def test_a_malformed_ranking_key_raises() -> None:
    with pytest.raises(ValueError, match="malformed key"):
        grade_ranking(["a"], ["a", "a"])


@pytest.mark.parametrize(
    ("answer", "key", "score"),
    [
        ([["Animal", "Cat"]], [["Animal", "Cat"]], 1.0),
        ([["Animal", "Dog"]], [["Animal", "Cat"]], 0.5),  # shares 1 of 2 steps
        ([["Animal"]], [["Animal", "Cat"]], 0.5),
        ([["Plant"]], [["Animal", "Cat"]], 0.0),
        ([["Animal", "Cat"], ["Plant"]], [["Animal", "Cat"]], 2 / 3),  # 2 * 1 / (2 + 1)
        ([["Plant"], ["Animal", "Dog"]], [["Animal", "Cat"], ["Plant"]], 0.75),  # 2*1.5/4
        ([], [], 1.0),
        ([], [["Plant"]], 0.0),
        ([[]], [["Plant"]], 0.0),
    ],
)
def test_taxonomies_grade_by_path(answer: Any, key: Any, score: float) -> None:
    assert grade_taxonomy(answer, key) == pytest.approx(score)


BOX = {"x": 0, "y": 0, "width": 10, "height": 10, "label": "car"}
ATTRIBUTES = (
    ChoicesAttribute(name="occluded", labels=["yes", "no"]),
    TextAttribute(name="plate"),
    RatingAttribute(name="damage", max=3),
)


@pytest.mark.parametrize(
    ("answer_attributes", "key_attributes", "score"),
    [
        ({"occluded": "yes"}, {"occluded": "yes"}, 1.0),
        ({"occluded": "no"}, {"occluded": "yes"}, 0.0),
        ({"plate": "AB13"}, {"plate": "AB12"}, 0.75),  # 1 edit in 4 characters
        ({"occluded": "yes", "damage": 1}, {"occluded": "yes", "damage": 2}, 0.5),
        ({}, {"occluded": "yes"}, 0.0),  # the key asks, the answer does not say
        ({"occluded": "no"}, {}, 1.0),  # the key asks nothing about this region
    ],
)
def test_a_matched_region_counts_by_how_well_its_attributes_agree(
    answer_attributes: dict[str, Any], key_attributes: dict[str, Any], score: float
) -> None:
    answer = [{**BOX, "attributes": answer_attributes}]
    key = [{**BOX, "attributes": key_attributes}]
    assert grade_boxes(answer, key, iou_threshold=0.5, attributes=ATTRIBUTES) == pytest.approx(
        score
    )


def test_attributes_weigh_matched_pairs_of_an_f1() -> None:
    # Two key boxes, three answer boxes; both keys matched, one with agreeing attributes and one
    # not: F1 with weights 1 and 0 is 2 * 1 / (3 + 2).
    far = {**BOX, "x": 100}
    key = [
        {**BOX, "attributes": {"occluded": "yes"}},
        {**far, "attributes": {"occluded": "no"}},
    ]
    answer = [
        {**BOX, "attributes": {"occluded": "yes"}},
        {**far, "attributes": {"occluded": "yes"}},
        {**BOX, "y": 200},
    ]
    assert grade_boxes(answer, key, iou_threshold=0.5, attributes=ATTRIBUTES) == pytest.approx(0.4)


def test_identical_spans_pair_up_to_agree_best() -> None:
    span = {"start": 0, "end": 3, "label": "PER"}
    key = [{**span, "attributes": {"damage": 1}}, {**span, "attributes": {"damage": 3}}]
    answer = [{**span, "attributes": {"damage": 3}}, {**span, "attributes": {"damage": 1}}]
    assert grade_spans(answer, key, attributes=ATTRIBUTES) == 1.0
    assert grade_spans(answer, key) == 1.0


def test_grade_controls_dispatches_the_new_controls() -> None:
    schema = parse_label_schema(
        {
            "controls": [
                {"name": "s", "type": "segments", "field": "a", "labels": ["x"]},
                {"name": "p", "type": "pairwise", "left_field": "l", "right_field": "r"},
                {"name": "r", "type": "ranking", "field": "c"},
                {
                    "name": "t",
                    "type": "taxonomy",
                    "field": "a",
                    "taxonomy": [{"value": "A", "children": [{"value": "B"}]}],
                },
            ]
        }
    )
    key = {"s": [seg(0, 2, "x")], "p": "left", "r": ["a", "b"], "t": [["A", "B"]]}
    answer = {"s": [seg(0, 2, "x")], "p": "right", "r": ["b", "a"], "t": [["A"]]}
    assert grade_controls(schema, answer, key) == {"s": 1.0, "p": 0.0, "r": 0.0, "t": 0.5}
