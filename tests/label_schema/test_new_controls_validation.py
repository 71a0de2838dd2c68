"""The controls issue 16 added (time segments, pairwise, ranking, taxonomy, per-region
attributes, labels taken from the item, several objects, label usage limits): their schema rules
and strict answer validation, every problem located."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import ValidationFailed
from app.label_schema import (
    LabelSchema,
    PairwiseControl,
    RatingControl,
    TaxonomyControl,
    parse_label_schema,
    required_fields,
    validate_answer,
)


def schema(*controls: dict[str, Any]) -> LabelSchema:
    return parse_label_schema({"controls": list(controls)})


def pointers(problems: list[dict[str, Any]]) -> list[str]:
    return [p["pointer"] for p in problems]


def schema_errors(*controls: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationFailed) as caught:
        schema(*controls)
    return caught.value.errors


# --- time segments ---

SEGMENTS = {
    "name": "speaker",
    "type": "segments",
    "field": "audio",
    "labels": ["host", "guest"],
    "duration_field": "seconds",
}


def test_segments_are_seconds_within_the_media() -> None:
    s = schema(SEGMENTS)
    payload = {"audio": "a.mp3", "seconds": 10}
    good = {"speaker": [{"start": 0, "end": 2.5, "label": "host"}]}
    assert validate_answer(s, good, payload) == []
    bad = {
        "speaker": [
            {"start": -1, "end": 2, "label": "host"},
            {"start": 3, "end": 3, "label": "guest"},
            {"start": 4, "end": 10.5, "label": "guest"},
            {"start": 1, "end": 2, "label": "band"},
            {"start": "1", "end": 2, "label": "host", "colour": "red"},
        ]
    }
    problems = validate_answer(s, bad, payload)
    assert pointers(problems) == [
        "#/speaker/0/start",
        "#/speaker/1/end",
        "#/speaker/2/end",
        "#/speaker/3/label",
        "#/speaker/4/colour",
        "#/speaker/4/start",
    ]
    assert "past the end of the media (10 seconds)" in problems[2]["detail"]
    # Without the duration, the end is not bounded.
    assert validate_answer(s, {"speaker": [{"start": 4, "end": 99, "label": "guest"}]}) == []


def test_segments_need_the_duration_field_in_the_payload() -> None:
    assert required_fields(schema(SEGMENTS)) == ["audio", "seconds"]


# --- pairwise ---


def test_pairwise_is_left_or_right_of_two_different_fields() -> None:
    s = schema({"name": "better", "type": "pairwise", "left_field": "a", "right_field": "b"})
    assert isinstance(s.controls[0], PairwiseControl)
    assert required_fields(s) == ["a", "b"]
    assert validate_answer(s, {"better": "right"}) == []
    for value in ("up", ["left"], 0, None):
        assert pointers(validate_answer(s, {"better": value})) == ["#/better"]
    errors = schema_errors({"name": "p", "type": "pairwise", "left_field": "a", "right_field": "a"})
    assert errors[0]["detail"] == "left_field and right_field must differ"


# --- ranking ---

RANKING = {"name": "rank", "type": "ranking", "field": "candidates"}
CANDIDATES = {"candidates": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}


def test_a_ranking_orders_every_candidate_once() -> None:
    s = schema(RANKING)
    assert validate_answer(s, {"rank": ["c", "a", "b"]}, CANDIDATES) == []
    problems = validate_answer(s, {"rank": ["c", "x", "c", 4]}, CANDIDATES)
    assert pointers(problems) == ["#/rank/1", "#/rank/2", "#/rank/3", "#/rank"]
    assert "unknown candidate 'x'" in problems[0]["detail"]
    assert "more than once" in problems[1]["detail"]
    assert "missing: 'a', 'b'" in problems[3]["detail"]
    assert pointers(validate_answer(s, {"rank": "abc"}, CANDIDATES)) == ["#/rank"]
    # Without the item, ids are checked for shape only.
    assert validate_answer(s, {"rank": ["q"]}) == []
    assert pointers(validate_answer(s, {"rank": []})) == ["#/rank"]


# --- taxonomy ---

TAXONOMY = {
    "name": "topic",
    "type": "taxonomy",
    "field": "text",
    "taxonomy": [
        {"value": "Animal", "children": [{"value": "Cat"}, {"value": "Dog"}]},
        {"value": "Plant"},
    ],
    "max": 2,
}


def test_taxonomy_paths_run_from_a_root_down() -> None:
    s = schema(TAXONOMY)
    control = s.controls[0]
    assert isinstance(control, TaxonomyControl)
    assert control.paths == {
        ("Animal",): False,
        ("Animal", "Cat"): True,
        ("Animal", "Dog"): True,
        ("Plant",): True,
    }
    assert validate_answer(s, {"topic": [["Animal", "Cat"], ["Plant"]]}) == []
    assert validate_answer(s, {"topic": [["Animal"]]}) == []
    problems = validate_answer(
        s, {"topic": [["Cat"], ["Plant"], ["Plant"], [], "Animal", ["Animal", 3]]}
    )
    assert pointers(problems) == [
        "#/topic",
        "#/topic/0",
        "#/topic/2",
        "#/topic/3",
        "#/topic/4",
        "#/topic/5",
    ]
    assert "at most 2" in problems[0]["detail"]
    assert "'Cat' is not a path" in problems[1]["detail"]
    assert "more than once" in problems[2]["detail"]


def test_leafs_only_taxonomies_refuse_inner_nodes_and_required_ones_need_a_path() -> None:
    s = schema({**TAXONOMY, "leafs_only": True})
    assert "not a leaf" in validate_answer(s, {"topic": [["Animal"]]})[0]["detail"]
    assert "at least 1" in validate_answer(s, {"topic": []})[0]["detail"]


def test_taxonomy_siblings_are_unique() -> None:
    errors = schema_errors(
        {**TAXONOMY, "taxonomy": [{"value": "A", "children": [{"value": "x"}, {"value": "x"}]}]}
    )
    assert "repeated: 'x'" in errors[0]["detail"]


# --- per-region attributes ---

BOXES = {
    "name": "objects",
    "type": "boxes",
    "field": "image",
    "labels": ["car"],
    "width_field": "w",
    "height_field": "h",
    "attributes": [
        {"name": "occluded", "type": "choices", "labels": ["yes", "no"], "required": True},
        {"name": "colours", "type": "choices", "labels": ["red", "blue"], "multiple": True},
        {"name": "plate", "type": "text", "max_length": 8},
        {"name": "damage", "type": "rating", "max": 3},
    ],
}
BOX = {"x": 1, "y": 1, "width": 5, "height": 5, "label": "car"}


def test_regions_carry_their_attributes() -> None:
    s = schema(BOXES)
    answer = {
        "objects": [
            {
                **BOX,
                "attributes": {
                    "occluded": "no",
                    "colours": ["red"],
                    "plate": "AB-1",
                    "damage": 2,
                },
            }
        ]
    }
    assert validate_answer(s, answer, {"image": "u", "w": 10, "h": 10}) == []


def test_bad_attributes_are_each_reported_inside_their_region() -> None:
    s = schema(BOXES)
    answer = {
        "objects": [
            BOX,
            {
                **BOX,
                "attributes": {
                    "occluded": "maybe",
                    "colours": ["red", "red", "green"],
                    "plate": "ABCDEFGHIJ",
                    "damage": 4,
                    "speed": 3,
                },
            },
            {**BOX, "attributes": ["no"]},
        ]
    }
    assert pointers(validate_answer(s, answer)) == [
        "#/objects/0/attributes",
        "#/objects/1/attributes/speed",
        "#/objects/1/attributes/occluded",
        "#/objects/1/attributes/colours",
        "#/objects/1/attributes/colours/1",
        "#/objects/1/attributes/colours/2",
        "#/objects/1/attributes/plate",
        "#/objects/1/attributes/damage",
        "#/objects/2/attributes",
    ]


def test_optional_attributes_may_be_left_out_with_the_attributes_object() -> None:
    s = schema({**BOXES, "attributes": [{"name": "note", "type": "text"}]})
    assert validate_answer(s, {"objects": [BOX]}) == []
    assert validate_answer(s, {"objects": [{**BOX, "attributes": {}}]}) == []
    spans = schema(
        {
            "name": "ents",
            "type": "spans",
            "field": "t",
            "labels": ["PER"],
            "attributes": [{"name": "salience", "type": "rating"}],
        }
    )
    span = {"start": 0, "end": 2, "label": "PER", "attributes": {"salience": 9}}
    assert pointers(validate_answer(spans, {"ents": [span]})) == ["#/ents/0/attributes/salience"]


def test_attribute_names_are_one_question_each() -> None:
    clash = schema_errors(
        {**BOXES, "attributes": [{"name": "objects", "type": "text"}]},
    )
    assert "named like a control" in clash[0]["detail"]
    differ = schema_errors(
        {**BOXES, "attributes": [{"name": "note", "type": "text"}]},
        {
            "name": "areas",
            "type": "polygons",
            "field": "image",
            "labels": ["road"],
            "attributes": [{"name": "note", "type": "rating"}],
        },
    )
    assert "defined differently" in differ[0]["detail"]
    shared = schema(
        {**BOXES, "attributes": [{"name": "note", "type": "text"}]},
        {
            "name": "areas",
            "type": "polygons",
            "field": "image",
            "labels": ["road"],
            "attributes": [{"name": "note", "type": "text"}],
        },
    )
    assert len(shared.controls) == 2


def test_attribute_problems_in_a_schema_point_into_the_attribute() -> None:
    errors = schema_errors(
        {**BOXES, "attributes": [{"name": "occluded", "type": "choices", "labels": []}]}
    )
    assert errors[0]["pointer"] == "#/controls/0/attributes/0/labels"


# --- labels taken from the item ---


def test_labels_may_come_from_the_item() -> None:
    s = schema(
        {"name": "pick", "type": "choices", "field": "text", "labels_field": "options"},
        {
            "name": "ents",
            "type": "spans",
            "field": "text",
            "labels": ["PER"],
            "labels_field": "entity_types",
        },
    )
    assert required_fields(s) == ["text", "options", "entity_types"]
    payload = {
        "text": "Ada",
        "options": [{"value": "cat"}, "dog"],
        "entity_types": [{"value": "ORG"}],
    }
    good = {"pick": "dog", "ents": [{"start": 0, "end": 3, "label": "ORG"}]}
    assert validate_answer(s, good, payload) == []
    # The fixed labels stay allowed; anything else is not.
    assert (
        validate_answer(
            s, {"pick": "cat", "ents": [{"start": 0, "end": 3, "label": "PER"}]}, payload
        )
        == []
    )
    bad = {"pick": "cow", "ents": [{"start": 0, "end": 3, "label": "LOC"}]}
    assert pointers(validate_answer(s, bad, payload)) == ["#/pick", "#/ents/0/label"]
    # Without the item any label passes: the options are not known.
    assert validate_answer(s, bad) == []


def test_a_labelled_control_needs_labels_or_a_labels_field() -> None:
    [error] = schema_errors({"name": "c", "type": "choices", "field": "t", "labels": []})
    assert error["pointer"] == "#/controls/0/labels"


# --- several objects ---


def test_a_rating_may_label_several_fields_together() -> None:
    s = schema({"name": "alike", "type": "rating", "fields": ["left", "right"]})
    control = s.controls[0]
    assert isinstance(control, RatingControl)
    assert (control.field, control.fields) == ("left", ["left", "right"])
    assert required_fields(s) == ["left", "right"]
    errors = schema_errors(
        {"name": "c", "type": "choices", "field": "x", "fields": ["a", "b"], "labels": ["y"]}
    )
    assert "field must be the first of fields" in errors[0]["detail"]


# --- label usage limits ---


def test_label_usage_limits_count_regions_per_label() -> None:
    s = schema(
        {
            "name": "ents",
            "type": "spans",
            "field": "t",
            "labels": ["PER", "ORG"],
            "max_per_label": 2,
            "label_limits": {"ORG": 1},
        }
    )
    spans = [{"start": i, "end": i + 1, "label": "PER"} for i in range(3)]
    spans += [{"start": 5, "end": 6, "label": "ORG"}, {"start": 6, "end": 7, "label": "ORG"}]
    problems = validate_answer(s, {"ents": spans})
    assert [p["detail"] for p in problems] == [
        "label 'PER' is used 3 times; at most 2 allowed",
        "label 'ORG' is used 2 times; at most 1 allowed",
    ]
    assert validate_answer(s, {"ents": spans[1:4]}) == []
    errors = schema_errors(
        {"name": "e", "type": "spans", "field": "t", "labels": ["PER"], "label_limits": {"X": 1}}
    )
    assert "label_limits name labels the control does not have: X" in errors[0]["detail"]
