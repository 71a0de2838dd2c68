"""The Label Studio tags and attributes issue 16 added, both ways: XML -> schema, schema -> XML,
answers -> annotation results, annotation results -> answers."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import ValidationFailed
from app.label_schema import (
    BoxesControl,
    ChoicesAttribute,
    ChoicesControl,
    LabelSchema,
    PairwiseControl,
    RankingControl,
    RatingAttribute,
    RatingControl,
    SegmentsControl,
    SpansControl,
    TaxonomyControl,
    TextAttribute,
    parse_label_schema,
)
from app.label_schema.label_studio import (
    answer_from_label_studio,
    label_schema_from_label_studio,
    label_studio_config,
    label_studio_result,
    read_label_studio_config,
)


def convert(body: str) -> LabelSchema:
    return label_schema_from_label_studio(f"<View>{body}</View>")


# --- Label Studio -> Tessera ---


def test_labels_over_audio_or_video_are_time_segments() -> None:
    audio, video, synced = convert(
        '<Audio name="a" value="$audio"/>'
        '<Labels name="speaker" toName="a"><Label value="host"/></Labels>'
        '<Video name="v" value="$video"/>'
        '<Labels name="scene" toName="v"><Label value="intro"/></Labels>'
        '<Video name="v2" value="$clip" sync="a2"/><Audio name="a2" value="$clip" sync="v2"/>'
        '<Labels name="tricks" toName="a2"><Label value="kickflip"/></Labels>'
    ).controls
    assert isinstance(audio, SegmentsControl)
    assert (audio.field, audio.media, audio.labels) == ("audio", "audio", ["host"])
    assert isinstance(video, SegmentsControl)
    assert video.media == "video"
    assert isinstance(synced, SegmentsControl)
    assert (synced.field, synced.media) == ("clip", "video")


def test_pairwise_compares_the_two_objects_of_its_to_name() -> None:
    [control] = convert(
        '<Text name="t1" value="$left"/><Text name="t2" value="$right"/>'
        '<Pairwise name="pw" toName="t1,t2"/>'
    ).controls
    assert isinstance(control, PairwiseControl)
    assert (control.left_field, control.right_field, control.required) == ("left", "right", True)


def test_a_ranker_orders_the_items_of_a_list() -> None:
    [control] = convert(
        '<List name="results" value="$items"/><Ranker name="rank" toName="results"/>'
    ).controls
    assert isinstance(control, RankingControl)
    assert control.field == "items"
    with pytest.raises(ValidationFailed) as caught:
        convert(
            '<List name="r" value="$items"/>'
            '<Ranker name="rank" toName="r"><Bucket name="b"/></Ranker>'
        )
    assert "cannot contain <Bucket>" in caught.value.errors[0]["detail"]


def test_taxonomy_choices_nest_and_keep_their_limits() -> None:
    [control] = convert(
        '<Text name="t" value="$text"/>'
        '<Taxonomy name="topic" toName="t" maxUsages="2" leafsOnly="true">'
        '<Choice value="Animal"><Choice value="Cat" alias="cat"/><View><Choice value="Dog"/></View>'
        '</Choice><Choice value="Plant"/></Taxonomy>'
    ).controls
    assert isinstance(control, TaxonomyControl)
    assert control.model_dump()["taxonomy"] == [
        {
            "value": "Animal",
            "children": [{"value": "cat", "children": []}, {"value": "Dog", "children": []}],
        },
        {"value": "Plant", "children": []},
    ]
    assert (control.max, control.leafs_only, control.required) == (2, True, False)


def test_per_region_tags_become_attributes_of_the_region_controls_on_their_object() -> None:
    boxes, polygons, spans = convert(
        '<Image name="img" value="$image"/><Text name="t" value="$text"/>'
        '<RectangleLabels name="boxes" toName="img"><Label value="car"/></RectangleLabels>'
        '<PolygonLabels name="areas" toName="img"><Label value="road"/></PolygonLabels>'
        '<Labels name="ents" toName="t"><Label value="PER"/></Labels>'
        '<Header value="Is it hidden?"/>'
        '<Choices name="occluded" toName="img" perRegion="true" required="true">'
        '<Choice value="yes"/><Choice value="no"/></Choices>'
        '<TextArea name="plate" toName="img" perRegion="true" whenTagName="boxes"/>'
        '<Rating name="salience" toName="t" perRegion="true" maxRating="3"/>'
    ).controls
    assert isinstance(boxes, BoxesControl)
    assert [a.name for a in boxes.attributes] == ["occluded", "plate"]
    occluded = boxes.attributes[0]
    assert isinstance(occluded, ChoicesAttribute)
    assert (occluded.labels, occluded.required, occluded.description) == (
        ["yes", "no"],
        True,
        "Is it hidden?",
    )
    assert isinstance(boxes.attributes[1], TextAttribute)
    assert [a.name for a in polygons.attributes] == ["occluded"]  # whenTagName kept plate off
    assert isinstance(spans, SpansControl)
    [salience] = spans.attributes
    assert isinstance(salience, RatingAttribute)
    assert salience.max == 3


def test_labels_from_the_task_data_become_a_labels_field() -> None:
    choices, spans = convert(
        '<Text name="t" value="$text"/>'
        '<Choices name="pick" toName="t" value="$options"/>'
        '<Labels name="ents" toName="t" value="$types"><Label value="PER"/></Labels>'
    ).controls
    assert isinstance(choices, ChoicesControl)
    assert (choices.labels, choices.labels_field) == ([], "options")
    assert isinstance(spans, SpansControl)
    assert (spans.labels, spans.labels_field) == (["PER"], "types")


def test_a_rating_or_choices_may_name_several_objects() -> None:
    rating, choices = convert(
        '<Image name="i1" value="$first"/><Image name="i2" value="$second"/>'
        '<Rating name="alike" toName="i1,i2"/>'
        '<Choices name="same" toName="i1, i2"><Choice value="yes"/></Choices>'
    ).controls
    assert isinstance(rating, RatingControl)
    assert (rating.field, rating.fields) == ("first", ["first", "second"])
    assert isinstance(choices, ChoicesControl)
    assert choices.fields == ["first", "second"]


def test_a_header_describes_the_control_after_it_and_max_usages_are_kept() -> None:
    [ents] = convert(
        '<Header>Mark every\n  person</Header><Text name="t" value="$text"/>'
        '<Labels name="ents" toName="t" maxUsages="4">'
        '<Label value="PER" maxUsages="2"/><Label value="ORG"/></Labels>'
    ).controls
    assert isinstance(ents, SpansControl)
    assert ents.description == "Mark every person"
    assert (ents.max_per_label, ents.label_limits) == (4, {"PER": 2})


def test_the_objects_each_control_labels_keep_their_names() -> None:
    parsed = read_label_studio_config(
        '<View><Text name="review" value="$text"/><Text name="other" value="$b"/>'
        '<Choices name="sentiment" toName="review"><Choice value="ok"/></Choices>'
        '<Pairwise name="pw" toName="review,other"/></View>'
    )
    assert [(t.tag, t.name, t.field) for t in parsed.targets["sentiment"]] == [
        ("Text", "review", "text")
    ]
    assert [t.name for t in parsed.targets["pw"]] == ["review", "other"]
    [result] = label_studio_result(
        parsed.schema, {"sentiment": "ok", "pw": "left"}, None, parsed.targets
    )[:1]
    assert result["to_name"] == "review"


# --- Tessera -> Label Studio -> Tessera ---

EVERYTHING_NEW: dict[str, Any] = {
    "controls": [
        {
            "name": "ents",
            "type": "spans",
            "field": "text",
            "labels": ["PER", "ORG"],
            "description": "People and organisations",
            "max_per_label": 3,
            "label_limits": {"PER": 2},
            "attributes": [{"name": "salience", "type": "rating", "max": 3}],
        },
        {
            "name": "objects",
            "type": "boxes",
            "field": "image",
            "labels": ["car"],
            "attributes": [
                {"name": "occluded", "type": "choices", "labels": ["yes", "no"], "required": True},
                {"name": "plate", "type": "text"},
            ],
        },
        {
            "name": "areas",
            "type": "polygons",
            "field": "image",
            "labels": ["road"],
            "attributes": [
                {"name": "occluded", "type": "choices", "labels": ["yes", "no"], "required": True}
            ],
        },
        {"name": "speech", "type": "segments", "field": "audio", "labels": ["speech"]},
        {"name": "scenes", "type": "segments", "field": "video", "labels": ["x"], "media": "video"},
        {"name": "better", "type": "pairwise", "left_field": "a", "right_field": "b"},
        {"name": "rank", "type": "ranking", "field": "candidates"},
        {
            "name": "topic",
            "type": "taxonomy",
            "field": "text",
            "taxonomy": [{"value": "A", "children": [{"value": "B"}]}, {"value": "C"}],
            "max": 2,
            "leafs_only": True,
            "required": False,
        },
        {"name": "alike", "type": "rating", "fields": ["a", "b"], "required": False},
        {"name": "pick", "type": "choices", "field": "text", "labels_field": "options"},
    ]
}


def test_every_new_feature_survives_the_round_trip_through_a_config() -> None:
    schema = parse_label_schema(EVERYTHING_NEW)
    config = label_studio_config(schema)
    assert '<Audio name="video" value="$video" sync="video_video" />' in config
    assert '<Choices name="occluded" toName="image" perRegion="true" required="true">' in config
    assert (
        '<TextArea name="plate" toName="image" perRegion="true" whenTagName="objects" />' in config
    )
    assert '<Header value="People and organisations" />' in config
    assert label_schema_from_label_studio(config) == schema


PAYLOAD = {
    "text": "Ada met IBM",
    "image": "u",
    "original_width": 200,
    "original_height": 100,
    "audio": "a.wav",
    "video": "v.mp4",
    "a": "x",
    "b": "y",
    "candidates": [{"id": "c1"}, {"id": "c2"}],
    "options": ["o1", {"value": "o2"}],
}
ANSWER: dict[str, Any] = {
    "ents": [
        {"start": 0, "end": 3, "label": "PER", "attributes": {"salience": 2}},
        {"start": 8, "end": 11, "label": "ORG"},
    ],
    "objects": [
        {
            "x": 20,
            "y": 10,
            "width": 30,
            "height": 40,
            "label": "car",
            "attributes": {"occluded": "yes", "plate": "AB 12"},
        }
    ],
    "areas": [
        {"points": [[0, 0], [50, 0], [25, 100]], "label": "road", "attributes": {"occluded": "no"}}
    ],
    "speech": [{"start": 0.25, "end": 1.5, "label": "speech"}],
    "scenes": [{"start": 2, "end": 3.75, "label": "x"}],
    "better": "right",
    "rank": ["c2", "c1"],
    "topic": [["A", "B"], ["C"]],
    "alike": 4,
    "pick": "o2",
}


def test_answers_become_results_and_come_back_unchanged() -> None:
    schema = parse_label_schema(EVERYTHING_NEW)
    results = label_studio_result(schema, ANSWER, PAYLOAD)
    assert answer_from_label_studio(schema, results, PAYLOAD) == ANSWER


def test_new_controls_results_have_label_studio_shapes() -> None:
    schema = parse_label_schema(EVERYTHING_NEW)
    results = label_studio_result(schema, ANSWER, PAYLOAD)
    shapes = {(r["from_name"], r["id"]): (r["to_name"], r["type"], r["value"]) for r in results}
    assert shapes[("salience", "ents-0")] == (
        "text",
        "rating",
        {"start": 0, "end": 3, "text": "Ada", "rating": 2},
    )
    assert ("salience", "ents-1") not in shapes
    assert shapes[("occluded", "objects-0")] == (
        "image",
        "choices",
        {"x": 10.0, "y": 10.0, "width": 15.0, "height": 40.0, "rotation": 0, "choices": ["yes"]},
    )
    assert shapes[("plate", "objects-0")][1:] == (
        "textarea",
        {"x": 10.0, "y": 10.0, "width": 15.0, "height": 40.0, "rotation": 0, "text": ["AB 12"]},
    )
    assert shapes[("speech", "speech-0")] == (
        "audio",
        "labels",
        {"start": 0.25, "end": 1.5, "labels": ["speech"]},
    )
    assert shapes[("scenes", "scenes-0")][0] == "video"  # the Audio synced to the Video
    assert shapes[("better", "better")] == ("a", "pairwise", {"selected": "right"})
    assert shapes[("rank", "rank")] == ("candidates", "ranker", {"ranker": {"rank": ["c2", "c1"]}})
    assert shapes[("topic", "topic")] == ("text", "taxonomy", {"taxonomy": [["A", "B"], ["C"]]})
    assert shapes[("alike", "alike")] == ("a", "rating", {"rating": 4})
    assert shapes[("pick", "pick")] == ("text", "choices", {"choices": ["o2"]})


def test_shapes_come_back_in_pixels_of_the_results_original_size() -> None:
    schema = parse_label_schema(
        {"controls": [{"name": "b", "type": "boxes", "field": "image", "labels": ["car"]}]}
    )
    result = [
        {
            "id": "r1",
            "from_name": "b",
            "to_name": "img",
            "type": "rectanglelabels",
            "original_width": 300,
            "original_height": 150,
            "value": {
                "x": 10,
                "y": 20,
                "width": 33.3,
                "height": 50,
                "rotation": 0,
                "rectanglelabels": ["car"],
            },
        }
    ]
    [box] = answer_from_label_studio(schema, result, {"image": "u"})["b"]
    assert box == {
        "x": 30.0,
        "y": 30.0,
        "width": pytest.approx(99.9),
        "height": 75.0,
        "label": "car",
    }


@pytest.mark.parametrize(
    ("result", "pointer", "detail"),
    [
        ([{"from_name": "nope", "value": {}}], "#/0", "names no control"),
        (
            [{"from_name": "c", "type": "choices", "value": {"choices": ["a", "b"]}}],
            "#/0",
            "single choice",
        ),
        ([{"from_name": "c", "type": "rating", "value": {"rating": 1}}], "#/0", "is not 'choices'"),
        (
            [{"from_name": "c", "type": "choices", "value": {"choices": ["zzz"]}}],
            "#/answer/c",
            "unknown label",
        ),
        (
            [
                {
                    "from_name": "s",
                    "type": "labels",
                    "value": {"start": 0.5, "end": 2, "labels": ["X"]},
                }
            ],
            "#/0",
            "character offsets",
        ),
        ("not a list", "#", "list of result entries"),
        ([3], "#/0", "an object"),
    ],
)
def test_results_that_do_not_fit_are_refused_with_a_pointer(
    result: Any, pointer: str, detail: str
) -> None:
    schema = parse_label_schema(
        {
            "controls": [
                {
                    "name": "c",
                    "type": "choices",
                    "field": "t",
                    "labels": ["a", "b"],
                    "required": False,
                },
                {"name": "s", "type": "spans", "field": "t", "labels": ["X"], "required": False},
            ]
        }
    )
    with pytest.raises(ValidationFailed) as caught:
        answer_from_label_studio(schema, result, {"t": "text"})
    [error] = caught.value.errors[:1]
    assert error["pointer"] == pointer
    assert detail in error["detail"]


def test_rotated_rectangles_are_refused() -> None:
    schema = parse_label_schema(
        {"controls": [{"name": "b", "type": "boxes", "field": "image", "labels": ["car"]}]}
    )
    result = [
        {
            "from_name": "b",
            "type": "rectanglelabels",
            "original_width": 10,
            "original_height": 10,
            "value": {
                "x": 1,
                "y": 1,
                "width": 1,
                "height": 1,
                "rotation": 30,
                "rectanglelabels": ["car"],
            },
        }
    ]
    with pytest.raises(ValidationFailed) as caught:
        answer_from_label_studio(schema, result, {"image": "u"})
    assert "rotated" in caught.value.errors[0]["detail"]


def test_an_empty_result_is_nothing_here_for_required_regions() -> None:
    schema = parse_label_schema(
        {"controls": [{"name": "s", "type": "spans", "field": "t", "labels": ["X"]}]}
    )
    assert answer_from_label_studio(schema, [], {"t": "x"}) == {"s": []}
