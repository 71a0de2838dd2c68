"""parse_label_schema: a schema document is checked whole, every problem with a pointer into it."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import ValidationFailed
from app.label_schema import (
    ChoicesControl,
    LabelSchema,
    NumberControl,
    parse_label_schema,
    required_fields,
)


def errors_of(document: object) -> list[dict[str, Any]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_label_schema(document)
    assert caught.value.status == 422
    return caught.value.errors


def pointers(document: object) -> list[str]:
    return [e["pointer"] for e in errors_of(document)]


def test_a_valid_document_parses_with_defaults() -> None:
    schema = parse_label_schema(
        {
            "controls": [
                {"name": "sentiment", "type": "choices", "field": "text", "labels": ["a", "b"]},
                {"name": "score", "type": "number"},
            ]
        }
    )
    choices = schema.controls[0]
    assert isinstance(choices, ChoicesControl)
    assert (choices.min_count, choices.max_count, choices.required) == (1, 1, True)
    assert isinstance(schema.controls[1], NumberControl)
    assert schema.control("score") is schema.controls[1]
    assert schema.control("nope") is None


def test_a_parsed_schema_is_returned_as_is() -> None:
    schema = parse_label_schema({"controls": [{"name": "r", "type": "rating"}]})
    assert parse_label_schema(schema) is schema


@pytest.mark.parametrize("document", [None, 3, ["controls"], "controls: []"])
def test_a_document_that_is_neither_an_object_nor_xml_is_one_problem_at_the_root(
    document: object,
) -> None:
    assert pointers(document) == ["#"]


def test_every_problem_in_a_document_is_reported_with_a_pointer() -> None:
    document = {
        "controls": [
            {"name": "ok", "type": "choices", "field": "text", "labels": ["a", "a", "b"]},
            {"name": "bad name!", "type": "spans", "field": "text", "labels": []},
            {"name": "boxes", "type": "boxes", "field": "img", "labels": ["car"], "colour": "red"},
            {"name": "kind", "type": "sliders"},
            {"name": "untyped"},
            {"name": "stars", "type": "rating", "max": 11},
            {"name": "n", "type": "number", "min": "0", "integer": 1},
        ],
        "title": "extra",
    }
    assert pointers(document) == [
        "#/controls/0/labels",
        "#/controls/1/name",
        "#/controls/1/labels",
        "#/controls/2/colour",
        "#/controls/3/type",
        "#/controls/4/type",
        "#/controls/5/max",
        "#/controls/6/min",
        "#/controls/6/integer",
        "#/title",
    ]


def test_duplicate_labels_are_named() -> None:
    document = {
        "controls": [{"name": "c", "type": "choices", "field": "t", "labels": ["x", "y", "x"]}]
    }
    [error] = errors_of(document)
    assert error == {
        "pointer": "#/controls/0/labels",
        "detail": "labels must be unique; repeated: 'x'",
    }


def test_duplicate_control_names_are_named() -> None:
    document = {"controls": [{"name": "r", "type": "rating"}, {"name": "r", "type": "number"}]}
    [error] = errors_of(document)
    assert error["pointer"] == "#/controls"
    assert "repeated: 'r'" in error["detail"]


@pytest.mark.parametrize(
    ("control", "expected"),
    [
        ({"type": "choices", "field": "t", "labels": ["a", "b"], "max": 2}, "multiple: true"),
        (
            {
                "type": "choices",
                "field": "t",
                "labels": ["a", "b"],
                "multiple": True,
                "min": 3,
                "max": 5,
            },
            "number of labels",
        ),
        ({"type": "spans", "field": "t", "labels": ["a"], "min": 5, "max": 2}, "min must not"),
        ({"type": "number", "min": 2, "max": 1}, "min must not exceed max"),
    ],
)
def test_inconsistent_control_settings_are_reported_on_the_control(
    control: dict[str, Any], expected: str
) -> None:
    [error] = errors_of({"controls": [{"name": "c", **control}]})
    assert error["pointer"] == "#/controls/0"
    assert expected in error["detail"]


def test_numbers_in_a_schema_must_be_finite() -> None:
    document = {"controls": [{"name": "n", "type": "number", "max": float("inf")}]}
    assert pointers(document) == ["#/controls/0/max"]


def test_a_schema_needs_at_least_one_control() -> None:
    assert pointers({"controls": []}) == ["#/controls"]
    assert pointers({}) == ["#/controls"]


def test_required_fields_lists_payload_fields_in_first_use_order() -> None:
    schema = LabelSchema.model_validate(
        {
            "controls": [
                {"name": "c", "type": "choices", "field": "text", "labels": ["a"]},
                {
                    "name": "b",
                    "type": "boxes",
                    "field": "image",
                    "labels": ["car"],
                    "width_field": "w",
                    "height_field": "h",
                },
                {"name": "s", "type": "spans", "field": "text", "labels": ["a"]},
                {"name": "r", "type": "rating"},
            ]
        }
    )
    assert required_fields(schema) == ["text", "image", "w", "h"]


def test_labels_and_field_names_cannot_hold_control_characters() -> None:
    document = {
        "controls": [{"name": "c", "type": "choices", "field": "te\nxt", "labels": ["a", "b\tc"]}]
    }
    assert [(e["pointer"], e["detail"]) for e in errors_of(document)] == [
        ("#/controls/0/field", "must not contain control characters"),
        ("#/controls/0/labels/1", "must not contain control characters"),
    ]
