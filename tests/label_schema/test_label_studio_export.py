"""Schemas become Label Studio configs, and answers Label Studio annotation results."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import ValidationFailed
from app.label_schema import LabelSchema, parse_label_schema
from app.label_schema.label_studio import (
    label_schema_from_label_studio,
    label_studio_config,
    label_studio_result,
)

EVERY_CONTROL = {
    "controls": [
        {"name": "text", "type": "choices", "field": "text", "labels": ["pos", "neg"]},
        {
            "name": "topics",
            "type": "choices",
            "field": "text",
            "labels": ["a", "b"],
            "multiple": True,
            "required": False,
        },
        {"name": "entities", "type": "spans", "field": "text", "labels": ["PER", "ORG"]},
        {"name": "objects", "type": "boxes", "field": "image", "labels": ["car", "person"]},
        {
            "name": "areas",
            "type": "polygons",
            "field": "image",
            "labels": ["road"],
            "required": False,
        },
        {"name": "points", "type": "keypoints", "field": "image", "labels": ["nose"]},
        {"name": "caption", "type": "text", "field": "image"},
        {"name": "stars", "type": "rating", "max": 7},
        {"name": "count", "type": "number", "field": "text", "min": 0, "max": 10, "integer": True},
        {"name": "score", "type": "number", "min": -0.5, "required": False},
        {"name": "quality", "type": "choices", "field": "image", "labels": ["ok", "blurry"]},
        {"name": "spans-on-image-field", "type": "spans", "field": "image", "labels": ["X"]},
    ]
}


def test_a_schema_survives_the_round_trip_through_a_label_studio_config() -> None:
    schema = parse_label_schema(EVERY_CONTROL)
    config = label_studio_config(schema)
    assert label_schema_from_label_studio(config) == schema


def test_the_generated_config_shows_each_field_once_with_the_right_object_tag() -> None:
    config = label_studio_config(parse_label_schema(EVERY_CONTROL))
    lines = [line.strip() for line in config.splitlines()]
    objects = [line for line in lines if line.startswith(("<Text ", "<Image "))]
    assert objects == [
        # The control named "text" takes the plain name, so the field's object gets a suffix.
        '<Text name="text_2" value="$text" />',
        '<Image name="image" value="$image" />',
        '<Text name="item" value="" />',  # what the field-less rating and number label
        '<Text name="image_2" value="$image" />',  # spans need a Text even on an image field
    ]
    assert '<Choices name="text" toName="text_2" required="true">' in lines
    assert '<Choices name="topics" toName="text_2" choice="multiple">' in lines
    assert '<Labels name="entities" toName="text_2">' in lines
    assert '<RectangleLabels name="objects" toName="image">' in lines
    assert '<PolygonLabels name="areas" toName="image" required="false">' in lines
    assert '<TextArea name="caption" toName="image" required="true" maxSubmissions="1" />' in lines
    assert '<Rating name="stars" toName="item" required="true" maxRating="7" />' in lines
    assert (
        '<Number name="count" toName="text_2" required="true" min="0" max="10" step="1" />' in lines
    )
    assert '<Number name="score" toName="item" min="-0.5" />' in lines
    assert '<Choices name="quality" toName="image" required="true">' in lines


def test_settings_label_studio_cannot_express_come_back_as_defaults() -> None:
    schema = parse_label_schema(
        {
            "controls": [
                {
                    "name": "objects",
                    "type": "boxes",
                    "field": "image",
                    "labels": ["car"],
                    "iou_threshold": 0.7,
                    "width_field": "w",
                    "height_field": "h",
                    "max": 5,
                }
            ]
        }
    )
    [back] = label_schema_from_label_studio(label_studio_config(schema)).controls
    assert back.model_dump() == {
        **schema.controls[0].model_dump(),
        "iou_threshold": 0.5,
        "width_field": None,
        "height_field": None,
        "max": 1000,
    }


def test_labels_are_escaped_in_the_generated_config() -> None:
    labels = ['say "hi"', "a & b", "<tag>", "ünï €", "$x"]
    schema = parse_label_schema(
        {"controls": [{"name": "c", "type": "choices", "field": "f", "labels": labels}]}
    )
    assert label_schema_from_label_studio(label_studio_config(schema)) == schema


# --- results ---

IMAGE_SCHEMA = parse_label_schema(
    {
        "controls": [
            {
                "name": "objects",
                "type": "boxes",
                "field": "image",
                "labels": ["car"],
                "width_field": "w",
                "height_field": "h",
            },
            {
                "name": "areas",
                "type": "polygons",
                "field": "image",
                "labels": ["road"],
                "width_field": "w",
                "height_field": "h",
            },
            {
                "name": "points",
                "type": "keypoints",
                "field": "image",
                "labels": ["nose"],
                "width_field": "w",
                "height_field": "h",
                "required": False,
            },
        ]
    }
)
PAYLOAD = {"image": "https://example.test/1.jpg", "w": 200, "h": 400}


def test_boxes_become_rectanglelabels_in_percent_of_the_image() -> None:
    answer = {
        "objects": [{"x": 20, "y": 100, "width": 50, "height": 300, "label": "car"}],
        "areas": [],
    }
    assert label_studio_result(IMAGE_SCHEMA, answer, PAYLOAD) == [
        {
            "id": "objects-0",
            "from_name": "objects",
            "to_name": "image",
            "type": "rectanglelabels",
            "value": {
                "x": 10.0,
                "y": 25.0,
                "width": 25.0,
                "height": 75.0,
                "rotation": 0,
                "rectanglelabels": ["car"],
            },
            "original_width": 200,
            "original_height": 400,
            "image_rotation": 0,
        }
    ]


def test_polygons_and_keypoints_become_percent_points() -> None:
    answer = {
        "objects": [],
        "areas": [{"points": [[0, 0], [200, 0], [100, 400]], "label": "road"}],
        "points": [{"x": 50, "y": 100, "label": "nose"}],
    }
    polygon, keypoint = label_studio_result(IMAGE_SCHEMA, answer, PAYLOAD)
    assert polygon["type"] == "polygonlabels"
    assert polygon["value"] == {
        "points": [[0.0, 0.0], [100.0, 0.0], [50.0, 100.0]],
        "polygonlabels": ["road"],
    }
    assert keypoint["type"] == "keypointlabels"
    # Label Studio tells a keypoint by its `width` (drawn size): one pixel here.
    assert keypoint["value"] == {"x": 25.0, "y": 25.0, "width": 0.5, "keypointlabels": ["nose"]}
    assert (keypoint["original_width"], keypoint["original_height"]) == (200, 400)


def test_shapes_need_the_image_size_in_the_payload() -> None:
    answer = {"objects": [{"x": 1, "y": 1, "width": 1, "height": 1, "label": "car"}], "areas": []}
    with pytest.raises(ValidationFailed) as caught:
        label_studio_result(IMAGE_SCHEMA, answer, {"image": "x"})
    assert caught.value.errors[0]["pointer"] == "#/objects"
    assert "image size is unknown" in caught.value.errors[0]["detail"]
    # No shapes, nothing to place: no size needed.
    assert label_studio_result(IMAGE_SCHEMA, {"objects": [], "areas": []}, {"image": "x"}) == []


def test_classification_spans_and_text_results() -> None:
    schema = parse_label_schema(EVERY_CONTROL)
    text = "Ada met Charles."
    answer: dict[str, Any] = {
        "text": "pos",
        "topics": ["a", "b"],
        "entities": [
            {"start": 0, "end": 3, "label": "PER"},
            {"start": 8, "end": 15, "label": "PER"},
        ],
        "objects": [],
        "points": [],
        "caption": "a cat",
        "stars": 6,
        "count": 3,
        "quality": "ok",
        "spans-on-image-field": [],
    }
    results = label_studio_result(schema, answer, {"text": text, "image": "u"})
    summary = [(r["from_name"], r["to_name"], r["type"], r["value"]) for r in results]
    assert summary == [
        ("text", "text_2", "choices", {"choices": ["pos"]}),
        ("topics", "text_2", "choices", {"choices": ["a", "b"]}),
        ("entities", "text_2", "labels", {"start": 0, "end": 3, "text": "Ada", "labels": ["PER"]}),
        (
            "entities",
            "text_2",
            "labels",
            {"start": 8, "end": 15, "text": "Charles", "labels": ["PER"]},
        ),
        ("caption", "image", "textarea", {"text": ["a cat"]}),
        ("stars", "item", "rating", {"rating": 6}),
        ("count", "text_2", "number", {"number": 3}),
        ("quality", "image", "choices", {"choices": ["ok"]}),
    ]
    assert len({r["id"] for r in results}) == len(results)


def test_an_invalid_answer_is_not_converted() -> None:
    with pytest.raises(ValidationFailed) as caught:
        label_studio_result(IMAGE_SCHEMA, {"objects": "car"}, PAYLOAD)
    assert [e["pointer"] for e in caught.value.errors] == ["#/objects", "#/areas"]


def test_empty_choices_and_empty_text_give_no_entry() -> None:
    schema: LabelSchema = parse_label_schema(
        {
            "controls": [
                {"name": "t", "type": "text", "field": "f", "required": False},
                {
                    "name": "c",
                    "type": "choices",
                    "field": "f",
                    "labels": ["a"],
                    "multiple": True,
                    "required": False,
                },
            ]
        }
    )
    assert label_studio_result(schema, {"t": "", "c": []}) == []
