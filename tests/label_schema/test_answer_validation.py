"""validate_answer: every problem in one item's answer, each with a JSON pointer into it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from app.label_schema import LabelSchema, Problem, parse_label_schema, validate_answer


def schema(*controls: dict[str, Any]) -> LabelSchema:
    return parse_label_schema({"controls": list(controls)})


def pointers(problems: list[Problem]) -> list[str]:
    return [p["pointer"] for p in problems]


def detail_at(problems: list[Problem], pointer: str) -> str:
    return next(p["detail"] for p in problems if p["pointer"] == pointer)


SENTIMENT = {
    "name": "sentiment",
    "type": "choices",
    "field": "text",
    "labels": ["pos", "neg", "neu"],
}
TOPICS = {
    "name": "topics",
    "type": "choices",
    "field": "text",
    "labels": ["a", "b", "c", "d"],
    "multiple": True,
    "max": 3,
}
ENTITIES = {"name": "entities", "type": "spans", "field": "text", "labels": ["PER", "ORG"]}
OBJECTS = {
    "name": "objects",
    "type": "boxes",
    "field": "image",
    "labels": ["car", "person"],
    "width_field": "w",
    "height_field": "h",
}
AREAS = {
    "name": "areas",
    "type": "polygons",
    "field": "image",
    "labels": ["road"],
    "width_field": "w",
    "height_field": "h",
    "max_points": 5,
}
POINTS = {
    "name": "points",
    "type": "keypoints",
    "field": "image",
    "labels": ["nose"],
    "width_field": "w",
    "height_field": "h",
}
CAPTION = {"name": "caption", "type": "text", "field": "image", "max_length": 10}
STARS = {"name": "stars", "type": "rating", "max": 5}
COUNT = {"name": "count", "type": "number", "min": 0, "max": 100, "integer": True}
SCORE = {"name": "score", "type": "number", "min": -1, "max": 1}

TEXT = "Ada Lovelace met Charles Babbage."  # 33 characters
IMAGE = {"image": "https://example.test/1.jpg", "w": 640, "h": 480}


# --- the answer as a whole ---


@pytest.mark.parametrize("answer", [None, [], "pos", 3, True])
def test_an_answer_that_is_not_an_object_is_one_problem_at_the_root(answer: object) -> None:
    problems = validate_answer(schema(SENTIMENT), answer)
    assert pointers(problems) == ["#"]


def test_a_valid_answer_has_no_problems() -> None:
    s = schema(SENTIMENT, ENTITIES, CAPTION, STARS, COUNT)
    answer = {
        "sentiment": "pos",
        "entities": [{"start": 0, "end": 12, "label": "PER"}],
        "caption": "two people",
        "stars": 4,
        "count": 2,
    }
    assert validate_answer(s, answer, {"text": TEXT, "image": "x"}) == []


def test_unknown_controls_and_missing_required_controls_are_all_reported() -> None:
    s = schema(SENTIMENT, STARS, {**COUNT, "required": False})
    problems = validate_answer(s, {"sentimnet": "pos", "extra": 1})
    assert pointers(problems) == ["#/sentimnet", "#/extra", "#/sentiment", "#/stars"]
    assert "unknown control 'sentimnet'" in detail_at(problems, "#/sentimnet")
    assert "missing" in detail_at(problems, "#/stars")


def test_an_optional_control_may_be_left_out_but_not_sent_as_null() -> None:
    s = schema({**STARS, "required": False})
    assert validate_answer(s, {}) == []
    assert pointers(validate_answer(s, {"stars": None})) == ["#/stars"]


def test_pointers_escape_tilde_and_slash_in_unknown_keys() -> None:
    s = schema(SENTIMENT)
    problems = validate_answer(s, {"a/b~c": 1, "sentiment": "pos"})
    assert pointers(problems) == ["#/a~1b~0c"]


# --- choices ---


def test_single_choice_accepts_one_known_label() -> None:
    assert validate_answer(schema(SENTIMENT), {"sentiment": "neu"}) == []


@pytest.mark.parametrize("value", ["happy", ["pos"], 1, None, ""])
def test_single_choice_rejects_anything_but_a_known_label(value: object) -> None:
    assert pointers(validate_answer(schema(SENTIMENT), {"sentiment": value})) == ["#/sentiment"]


def test_multiple_choice_reports_each_bad_label_and_the_count() -> None:
    s = schema(TOPICS)
    assert validate_answer(s, {"topics": ["a", "c"]}) == []
    problems = validate_answer(s, {"topics": ["a", "zzz", "a", 7, "b", "c"]})
    assert pointers(problems) == ["#/topics", "#/topics/1", "#/topics/2", "#/topics/3"]
    assert "at most 3" in detail_at(problems, "#/topics")
    assert "unknown label 'zzz'" in detail_at(problems, "#/topics/1")
    assert "more than once" in detail_at(problems, "#/topics/2")
    assert "string" in detail_at(problems, "#/topics/3")


def test_multiple_choice_needs_at_least_one_label_when_required() -> None:
    s = schema(TOPICS)
    problems = validate_answer(s, {"topics": []})
    assert pointers(problems) == ["#/topics"]
    assert "at least 1" in problems[0]["detail"]
    assert validate_answer(schema({**TOPICS, "required": False}), {"topics": []}) == []


def test_multiple_choice_must_be_an_array() -> None:
    assert pointers(validate_answer(schema(TOPICS), {"topics": "a"})) == ["#/topics"]


# --- spans ---


def test_spans_within_the_text_validate() -> None:
    answer = {
        "entities": [
            {"start": 0, "end": 12, "label": "PER"},
            {"start": 17, "end": 32, "label": "PER"},
            {"start": 0, "end": 33, "label": "ORG"},  # overlaps are allowed by default
        ]
    }
    assert validate_answer(schema(ENTITIES), answer, {"text": TEXT}) == []


def test_an_empty_span_list_means_nothing_here() -> None:
    assert validate_answer(schema(ENTITIES), {"entities": []}, {"text": TEXT}) == []


def test_every_bad_span_is_reported_with_a_pointer_to_the_bad_key() -> None:
    answer = {
        "entities": [
            {"start": 0, "end": 3, "label": "PER"},  # fine
            {"start": 5, "end": 40, "label": "PER"},  # end past the text
            {"start": 8, "end": 8, "label": "ORG"},  # empty
            {"start": -1, "end": 2, "label": "LOC"},  # negative start, unknown label
            {"start": 1.0, "end": True, "label": "PER"},  # not integers
            {"start": 1, "label": "PER", "colour": "red"},  # missing end, extra key
            "PER",  # not an object
            {"start": 40, "end": 45, "label": "PER"},  # wholly past the text
        ]
    }
    problems = validate_answer(schema(ENTITIES), answer, {"text": TEXT})
    assert pointers(problems) == [
        "#/entities/1/end",
        "#/entities/2/end",
        "#/entities/3/start",
        "#/entities/3/label",
        "#/entities/4/start",
        "#/entities/4/end",
        "#/entities/5/end",
        "#/entities/5/colour",
        "#/entities/6",
        "#/entities/7/start",
        "#/entities/7/end",
    ]
    assert detail_at(problems, "#/entities/1/end") == (
        "end 40 is past the end of the text (33 characters)"
    )
    assert "greater than start 8" in detail_at(problems, "#/entities/2/end")
    assert "unknown label 'LOC'" in detail_at(problems, "#/entities/3/label")
    assert "boolean" in detail_at(problems, "#/entities/4/end")
    assert "unexpected key 'colour'" in detail_at(problems, "#/entities/5/colour")


def test_without_the_text_spans_are_checked_for_shape_only() -> None:
    answer = {"entities": [{"start": 5, "end": 4000, "label": "PER"}]}
    assert validate_answer(schema(ENTITIES), answer) == []
    assert validate_answer(schema(ENTITIES), answer, {"text": 12}) == []


def test_span_count_outside_min_max_is_reported_on_the_control() -> None:
    s = schema({**ENTITIES, "min": 1, "max": 2})
    span = {"start": 0, "end": 1, "label": "PER"}
    assert pointers(validate_answer(s, {"entities": []})) == ["#/entities"]
    assert pointers(validate_answer(s, {"entities": [span] * 3})) == ["#/entities"]
    assert pointers(validate_answer(s, {"entities": span})) == ["#/entities"]


def test_overlapping_spans_are_reported_when_overlap_is_forbidden() -> None:
    s = schema({**ENTITIES, "allow_overlap": False})
    answer = {
        "entities": [
            {"start": 10, "end": 20, "label": "PER"},
            {"start": 0, "end": 5, "label": "PER"},
            {"start": 5, "end": 10, "label": "ORG"},  # touching is not overlapping
            {"start": 15, "end": 25, "label": "ORG"},  # overlaps 0
            {"start": 22, "end": 23, "label": "ORG"},  # inside 3
        ]
    }
    problems = validate_answer(s, answer, {"text": TEXT})
    assert pointers(problems) == ["#/entities/3", "#/entities/4"]
    assert "overlaps span 0" in detail_at(problems, "#/entities/3")
    assert "overlaps span 3" in detail_at(problems, "#/entities/4")


# --- boxes ---


def test_boxes_inside_the_image_validate() -> None:
    answer = {
        "objects": [
            {"x": 0, "y": 0, "width": 640, "height": 480, "label": "car"},
            {"x": 10.5, "y": 20.25, "width": 30, "height": 40.75, "label": "person"},
        ]
    }
    assert validate_answer(schema(OBJECTS), answer, IMAGE) == []


def test_every_bad_box_is_reported() -> None:
    answer = {
        "objects": [
            {"x": 600, "y": 0, "width": 50, "height": 10, "label": "car"},  # past the right
            {"x": 0, "y": 470, "width": 5, "height": 20, "label": "car"},  # past the bottom
            {"x": -1, "y": -2, "width": 0, "height": -3, "label": "bus"},
            {"x": True, "y": "1", "width": math.nan, "height": math.inf, "label": 3},
            {"x": 1, "y": 1, "width": 1, "height": 1, "label": "car", "colour": "red"},
            {"x": 700, "y": 500, "width": 1, "height": 1, "label": "car"},  # outside entirely
            {"x": 1, "y": 1},
        ]
    }
    problems = validate_answer(schema(OBJECTS), answer, IMAGE)
    assert pointers(problems) == [
        "#/objects/0/width",
        "#/objects/1/height",
        "#/objects/2/x",
        "#/objects/2/width",
        "#/objects/2/y",
        "#/objects/2/height",
        "#/objects/2/label",
        "#/objects/3/x",
        "#/objects/3/width",
        "#/objects/3/y",
        "#/objects/3/height",
        "#/objects/3/label",
        "#/objects/4/colour",
        "#/objects/5/x",
        "#/objects/5/y",
        "#/objects/6/width",
        "#/objects/6/height",
        "#/objects/6/label",
    ]
    assert "x + width = 650 > 640" in detail_at(problems, "#/objects/0/width")
    assert "boolean" in detail_at(problems, "#/objects/3/x")
    assert "nan is not a finite number" in detail_at(problems, "#/objects/3/width")
    assert "outside the image (width 640)" in detail_at(problems, "#/objects/5/x")
    assert "missing 'width'" in detail_at(problems, "#/objects/6/width")


def test_without_the_image_size_boxes_are_checked_for_shape_only() -> None:
    answer = {"objects": [{"x": 6000, "y": 0, "width": 50, "height": 10, "label": "car"}]}
    assert validate_answer(schema(OBJECTS), answer) == []
    assert validate_answer(schema(OBJECTS), answer, {"w": "640", "h": 0}) == []
    no_fields = {k: v for k, v in OBJECTS.items() if k not in ("width_field", "height_field")}
    assert validate_answer(schema(no_fields), answer, IMAGE) == []


def test_a_box_ending_a_rounding_error_past_the_edge_is_inside() -> None:
    box = {"x": 0.1, "y": 0, "width": 0.2, "height": 1, "label": "car"}  # 0.1 + 0.2 > 0.3
    assert validate_answer(schema(OBJECTS), {"objects": [box]}, {"w": 0.3, "h": 1}) == []


def test_boxes_must_be_an_array_of_objects() -> None:
    problems = validate_answer(schema(OBJECTS), {"objects": {"x": 1}}, IMAGE)
    assert pointers(problems) == ["#/objects"]
    problems = validate_answer(schema(OBJECTS), {"objects": [[1, 2, 3, 4]]}, IMAGE)
    assert pointers(problems) == ["#/objects/0"]


# --- polygons ---


def test_polygons_inside_the_image_validate() -> None:
    answer = {"areas": [{"points": [[0, 0], [640, 0], [640, 480], [0, 480.0]], "label": "road"}]}
    assert validate_answer(schema(AREAS), answer, IMAGE) == []


def test_every_bad_polygon_point_is_reported() -> None:
    answer = {
        "areas": [
            {"points": [[0, 0], [10, 0]], "label": "road"},  # too few points
            {"points": [[0, 0]] * 6, "label": "road"},  # too many
            {"points": [[0, 0], [700, 10], [5, -1], [1, 2, 3], "p", [None, 1]], "label": "road"},
            {"points": "0,0 1,1 2,2", "label": "river"},
            {"label": "road"},
        ]
    }
    problems = validate_answer(schema(AREAS), answer, IMAGE)
    assert pointers(problems) == [
        "#/areas/0/points",
        "#/areas/1/points",
        "#/areas/2/points",
        "#/areas/2/points/1/0",
        "#/areas/2/points/2/1",
        "#/areas/2/points/3",
        "#/areas/2/points/4",
        "#/areas/2/points/5/0",
        "#/areas/3/points",
        "#/areas/3/label",
        "#/areas/4/points",
    ]
    assert "2 points given; at least 3 needed" in detail_at(problems, "#/areas/0/points")
    assert "at most 5" in detail_at(problems, "#/areas/1/points")
    assert "6 points given" in detail_at(problems, "#/areas/2/points")
    assert "outside the image (width 640)" in detail_at(problems, "#/areas/2/points/1/0")
    assert "negative" in detail_at(problems, "#/areas/2/points/2/1")
    assert "an array of 3" in detail_at(problems, "#/areas/2/points/3")


# --- keypoints ---


def test_keypoints_inside_the_image_validate() -> None:
    answer = {
        "points": [{"x": 640, "y": 480, "label": "nose"}, {"x": 0, "y": 0.5, "label": "nose"}]
    }
    assert validate_answer(schema(POINTS), answer, IMAGE) == []


def test_every_bad_keypoint_is_reported() -> None:
    answer = {
        "points": [
            {"x": 641, "y": 481, "label": "nose"},
            {"x": -0.5, "y": False, "label": "ear"},
            {"x": 1, "label": "nose", "z": 3},
        ]
    }
    problems = validate_answer(schema(POINTS), answer, IMAGE)
    assert pointers(problems) == [
        "#/points/0/x",
        "#/points/0/y",
        "#/points/1/x",
        "#/points/1/y",
        "#/points/1/label",
        "#/points/2/y",
        "#/points/2/z",
    ]
    assert "outside the image (height 480)" in detail_at(problems, "#/points/0/y")


# --- text ---


def test_text_length_is_checked_against_min_and_max() -> None:
    s = schema(CAPTION)
    assert validate_answer(s, {"caption": "a dog"}) == []
    assert pointers(validate_answer(s, {"caption": ""})) == ["#/caption"]  # required: 1 char
    assert pointers(validate_answer(s, {"caption": "x" * 11})) == ["#/caption"]
    assert pointers(validate_answer(s, {"caption": ["a dog"]})) == ["#/caption"]
    optional = schema({**CAPTION, "required": False})
    assert validate_answer(optional, {"caption": ""}) == []


# --- rating ---


@pytest.mark.parametrize("value", [1, 3, 5])
def test_ratings_from_1_to_max_validate(value: int) -> None:
    assert validate_answer(schema(STARS), {"stars": value}) == []


@pytest.mark.parametrize("value", [0, 6, -1, 3.0, 3.5, True, "3", None])
def test_ratings_outside_1_to_max_or_not_integers_are_rejected(value: object) -> None:
    assert pointers(validate_answer(schema(STARS), {"stars": value})) == ["#/stars"]


# --- number ---


@pytest.mark.parametrize(
    ("control", "value"), [(COUNT, 0), (COUNT, 100), (SCORE, -0.5), (SCORE, 1)]
)
def test_numbers_within_range_validate(control: dict[str, Any], value: object) -> None:
    assert validate_answer(schema(control), {control["name"]: value}) == []


@pytest.mark.parametrize(
    ("control", "value", "expected"),
    [
        (COUNT, 2.0, "expected an integer"),
        (COUNT, 101, "above the maximum 100"),
        (COUNT, -1, "below the minimum 0"),
        (COUNT, False, "got a boolean"),
        (SCORE, True, "got a boolean"),
        (SCORE, math.nan, "not a finite number"),
        (SCORE, -math.inf, "not a finite number"),
        (SCORE, "0.5", "got a string"),
        (SCORE, 1.5, "above the maximum 1"),
    ],
)
def test_bad_numbers_are_rejected(control: dict[str, Any], value: object, expected: str) -> None:
    problems = validate_answer(schema(control), {control["name"]: value})
    assert pointers(problems) == [f"#/{control['name']}"]
    assert expected in problems[0]["detail"]


def test_problems_from_several_controls_are_all_reported_in_schema_order() -> None:
    s = schema(SENTIMENT, ENTITIES, OBJECTS, STARS, SCORE)
    answer = {
        "score": 7,
        "stars": 0,
        "objects": [{"x": 0, "y": 0, "width": 0, "height": 1, "label": "car"}],
        "entities": [{"start": 0, "end": 99, "label": "PER"}],
        "sentiment": "meh",
    }
    problems = validate_answer(s, answer, {"text": TEXT, **IMAGE})
    assert pointers(problems) == [
        "#/sentiment",
        "#/entities/0/end",
        "#/objects/0/width",
        "#/stars",
        "#/score",
    ]
