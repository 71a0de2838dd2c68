"""grade_answer and grade_controls: which controls are graded and how scores combine."""

from __future__ import annotations

from typing import Any

import pytest

from app.label_schema import LabelSchema
from app.label_schema.grading import grade_answer, grade_controls

SCHEMA = LabelSchema.model_validate(
    {
        "controls": [
            {"name": "sentiment", "type": "choices", "field": "text", "labels": ["pos", "neg"]},
            {"name": "objects", "type": "boxes", "field": "image", "labels": ["car", "person"]},
            {"name": "caption", "type": "text", "field": "text", "normalize": False},
            {"name": "stars", "type": "rating", "max": 5, "tolerance": 1},
        ]
    }
)
CAR = {"x": 0, "y": 0, "width": 10, "height": 10, "label": "car"}
PERSON = {"x": 50, "y": 50, "width": 10, "height": 20, "label": "person"}
KEY: dict[str, Any] = {
    "sentiment": "pos",
    "objects": [CAR, PERSON],
    "caption": "sitting",
    "stars": 4,
}


def test_score_is_the_mean_over_graded_controls() -> None:
    answer = {"sentiment": "pos", "objects": [CAR], "caption": "kitten", "stars": 5}
    # 1 (choice) + 2/3 (1 of 2 boxes) + 4/7 (Levenshtein 3 over 7) + 1 (within tolerance 1)
    expected = (1 + 2 / 3 + 4 / 7 + 1) / 4
    assert grade_answer(SCHEMA, answer, KEY) == pytest.approx(expected)


def test_grade_controls_explains_each_score_in_schema_order() -> None:
    answer = {"stars": 1, "caption": "kitten", "objects": [CAR], "sentiment": "neg"}
    scores = grade_controls(SCHEMA, answer, KEY)
    assert list(scores) == ["sentiment", "objects", "caption", "stars"]
    assert scores == pytest.approx(
        {"sentiment": 0.0, "objects": 2 / 3, "caption": 4 / 7, "stars": 0.0}
    )


def test_perfect_answer_scores_one() -> None:
    assert grade_answer(SCHEMA, KEY, KEY, payload={"text": "…", "image": "a.png"}) == 1.0


def test_controls_absent_from_the_key_are_not_graded() -> None:
    key = {"sentiment": "pos", "caption": None}  # null means absent
    answer = {"sentiment": "pos", "objects": "garbage", "caption": "anything", "stars": 99}
    assert grade_controls(SCHEMA, answer, key) == {"sentiment": 1.0}
    assert grade_answer(SCHEMA, answer, key) == 1.0


def test_control_missing_from_the_answer_scores_zero() -> None:
    answer = {"sentiment": "pos", "objects": [CAR, PERSON], "stars": None}
    scores = grade_controls(SCHEMA, answer, KEY)
    assert scores == {"sentiment": 1.0, "objects": 1.0, "caption": 0.0, "stars": 0.0}
    assert grade_answer(SCHEMA, answer, KEY) == 0.5


def test_malformed_answer_values_score_zero_without_raising() -> None:
    answer = {"sentiment": ["pos"], "objects": [{"x": "0"}], "caption": 7, "stars": True}
    assert grade_controls(SCHEMA, answer, KEY) == dict.fromkeys(KEY, 0.0)
    assert grade_answer(SCHEMA, "not an object", KEY) == 0.0  # type: ignore[arg-type]


def test_answer_entries_the_key_does_not_grade_are_ignored() -> None:
    answer = {**KEY, "unknown": "x", "also.unknown": [1, 2]}
    assert grade_answer(SCHEMA, answer, KEY) == 1.0


@pytest.mark.parametrize(
    "key",
    [{}, {"unknown": "pos"}, {"sentiment": None}],
    ids=["empty", "only-unknown-controls", "only-nulls"],
)
def test_key_grading_no_control_is_rejected(key: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="grades none"):
        grade_answer(SCHEMA, {"sentiment": "pos"}, key)
    with pytest.raises(ValueError, match="grades none"):
        grade_controls(SCHEMA, {"sentiment": "pos"}, key)


def test_malformed_key_value_is_rejected_naming_the_control() -> None:
    with pytest.raises(ValueError, match="'objects'"):
        grade_answer(SCHEMA, KEY, {**KEY, "objects": [{"x": 0}]})
    with pytest.raises(ValueError, match="object keyed by control name"):
        grade_answer(SCHEMA, KEY, ["pos"])  # type: ignore[arg-type]


def test_each_control_type_is_dispatched_with_its_settings() -> None:
    schema = LabelSchema.model_validate(
        {
            "controls": [
                {
                    "name": "tags",
                    "type": "choices",
                    "field": "t",
                    "labels": ["a", "b", "c"],
                    "multiple": True,
                },
                {"name": "ents", "type": "spans", "field": "t", "labels": ["PER"]},
                {
                    "name": "roads",
                    "type": "polygons",
                    "field": "i",
                    "labels": ["road"],
                    "iou_threshold": 0.3,
                },
                {
                    "name": "nose",
                    "type": "keypoints",
                    "field": "i",
                    "labels": ["nose"],
                    "tolerance": 5,
                },
                {"name": "note", "type": "text", "field": "t"},
                {"name": "count", "type": "number", "tolerance": 0.5},
            ]
        }
    )
    square = {"points": [[0, 0], [2, 0], [2, 2], [0, 2]], "label": "road"}
    shifted = {"points": [[1, 0], [3, 0], [3, 2], [1, 2]], "label": "road"}  # IoU 1/3
    key = {
        "tags": ["a", "b"],
        "ents": [{"start": 0, "end": 4, "label": "PER"}],
        "roads": [square],
        "nose": [{"x": 0, "y": 0, "label": "nose"}],
        "note": "Hello  World",
        "count": 10,
    }
    answer = {
        "tags": ["b", "c"],
        "ents": [{"start": 0, "end": 3, "label": "PER"}],
        "roads": [shifted],
        "nose": [{"x": 3, "y": 4, "label": "nose"}],
        "note": "hello world",
        "count": 10.5,
    }
    assert grade_controls(schema, answer, key) == pytest.approx(
        {"tags": 1 / 3, "ents": 0.0, "roads": 1.0, "nose": 1.0, "note": 1.0, "count": 1.0}
    )


def test_malformed_key_is_rejected_even_when_the_answer_lacks_the_control() -> None:
    with pytest.raises(ValueError, match="'stars'"):
        grade_answer(SCHEMA, {"sentiment": "pos"}, {"sentiment": "pos", "stars": "four"})
