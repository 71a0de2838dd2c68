"""The Label Studio tags issue 25 added for the template gallery, each end to end: config ->
schema, answer validation, grading, consensus, answer -> results -> answer, and the generated
config read back. Also the refusals that say what they refuse instead of losing it."""

from __future__ import annotations

from typing import Any

import pytest

from app.consensus.merge import merge_control
from app.core.errors import ValidationFailed
from app.label_schema import LabelSchema, parse_label_schema, validate_answer
from app.label_schema.grading import grade_answer, grade_control
from app.label_schema.label_studio import (
    answer_from_label_studio,
    label_studio_config,
    label_studio_result,
    read_label_studio_config,
)

CONFIG = """<View>
  <TimeSeries name="ts" value="$series" valueType="json" timeColumn="time">
    <Channel column="value"/>
  </TimeSeries>
  <TimeSeriesLabels name="events" toName="ts"><Label value="Run"/><Label value="Spike"/>
  </TimeSeriesLabels>
  <Choices name="cause" toName="ts" perRegion="true" whenTagName="events" whenLabelValue="Run">
    <Choice value="sensor"/><Choice value="human"/>
  </Choices>
  <Paragraphs name="dialogue" value="$dialogue" textKey="line"/>
  <ParagraphLabels name="slots" toName="dialogue"><Label value="Person"/></ParagraphLabels>
  <HyperText name="page" value="$html"/>
  <HyperTextLabels name="entities" toName="page"><Label value="ORG"/></HyperTextLabels>
  <Chat name="chat" value="$chat"/>
  <Rating name="accuracy" toName="chat" perRegion="true" maxRating="5"/>
</View>"""

PAYLOAD = {
    "series": {"time": [0, 1, 2], "value": [1, 2, 3]},
    "dialogue": [{"line": "Hi Ann"}, {"line": "Hello Bob, how are you"}],
    "html": "<p>ACME</p>",
    "chat": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
}

XPATH = "/p[1]/text()[1]"

ANSWER: dict[str, Any] = {
    "events": [
        {"start": 1, "end": 2.5, "label": "Run", "attributes": {"cause": "sensor"}},
        {"start": 3, "end": 3, "label": "Spike"},
    ],
    "slots": [{"start": 0, "start_offset": 3, "end": 1, "end_offset": 9, "label": "Person"}],
    "entities": [
        {"start": XPATH, "start_offset": 0, "end": XPATH, "end_offset": 4, "label": "ORG"}
    ],
    "chat": [{"message": 1, "attributes": {"accuracy": 4}}],
}


def schema() -> LabelSchema:
    return read_label_studio_config(CONFIG).schema


def test_the_new_tags_become_controls() -> None:
    controls = {c.name: c.model_dump(exclude_defaults=True) for c in schema().controls}
    assert controls["events"]["media"] == "timeseries"
    assert controls["events"]["attributes"] == [
        {"name": "cause", "labels": ["sensor", "human"], "when_labels": ["Run"]}
    ]
    assert controls["slots"] == {
        "name": "slots",
        "field": "dialogue",
        "labels": ["Person"],
        "text_key": "line",
    }
    assert controls["entities"]["media"] == "hypertext"
    assert schema().control("chat").type == "messages"  # type: ignore[union-attr]
    assert controls["chat"]["field"] == "chat"
    assert [a["name"] for a in controls["chat"]["attributes"]] == ["accuracy"]


def test_answers_of_the_new_tags_validate_and_travel_both_ways() -> None:
    parsed = read_label_studio_config(CONFIG)
    assert validate_answer(parsed.schema, ANSWER, PAYLOAD) == []
    results = label_studio_result(parsed.schema, ANSWER, PAYLOAD, parsed.targets)
    by_type: dict[tuple[str, str], Any] = {}
    for entry in results:
        by_type.setdefault((entry["from_name"], entry["type"]), entry["value"])
    assert by_type[("events", "timeserieslabels")] == {
        "start": 1,
        "end": 2.5,
        "instant": False,
        "timeserieslabels": ["Run"],
    }
    assert by_type[("slots", "paragraphlabels")] == {
        "start": "0",
        "end": "1",
        "startOffset": 3,
        "endOffset": 9,
        "text": "Ann\nHello Bob",
        "paragraphlabels": ["Person"],
    }
    assert by_type[("accuracy", "rating")] == {
        "chatmessage": {"role": "assistant", "content": "hello"},
        "rating": 4,
    }
    assert answer_from_label_studio(parsed.schema, results, PAYLOAD) == ANSWER


def test_the_generated_config_reads_back_as_the_same_schema() -> None:
    assert parse_label_schema(label_studio_config(schema())) == schema()


def test_bad_answers_of_the_new_tags_are_located() -> None:
    bad = {
        "events": [
            {"start": 2, "end": 1, "label": "Run"},
            {"start": 1, "end": 2, "label": "Spike", "attributes": {"cause": "human"}},
        ],
        "slots": [{"start": 5, "start_offset": 0, "end": 1, "end_offset": 99, "label": "Person"}],
        "entities": [
            {"start": "", "start_offset": 0, "end": XPATH, "end_offset": -1, "label": "ORG"}
        ],
        "chat": [{"message": 7}, {"message": 1}, {"message": 1}],
    }
    pointers = {p["pointer"] for p in validate_answer(schema(), bad, PAYLOAD)}
    assert pointers == {
        "#/events/0/end",
        "#/events/1/attributes/cause",  # asked only of "Run" regions
        "#/slots/0/start",
        "#/slots/0/end_offset",
        "#/entities/0/start",
        "#/entities/0/end_offset",
        "#/chat/0/message",
        "#/chat/2/message",
    }


def test_audio_segments_still_need_a_length_but_time_series_instants_do_not() -> None:
    audio = parse_label_schema(
        {"controls": [{"name": "s", "type": "segments", "field": "a", "labels": ["x"]}]}
    )
    assert validate_answer(audio, {"s": [{"start": 1, "end": 1, "label": "x"}]}) != []
    instant = {**ANSWER, "events": [{"start": 1, "end": 1, "label": "Spike"}]}
    assert validate_answer(schema(), instant, PAYLOAD) == []


def test_grading_and_consensus_of_the_new_tags() -> None:
    s = schema()
    assert grade_answer(s, ANSWER, ANSWER) == 1.0
    moved = {**ANSWER, "slots": [{**ANSWER["slots"][0], "end_offset": 8}]}
    assert grade_control(s.control("slots"), moved["slots"], ANSWER["slots"]) == 0.0
    other = [{"message": 1, "attributes": {"accuracy": 2}}]
    assert grade_control(s.control("chat"), other, ANSWER["chat"]) == 0.0
    # Instants match at the same time only.
    events = s.control("events")
    assert grade_control(events, [{"start": 3, "end": 3, "label": "Spike"}], ANSWER["events"][1:])
    assert not grade_control(
        events, [{"start": 4, "end": 4, "label": "Spike"}], ANSWER["events"][1:]
    )
    for name in ("events", "slots", "entities", "chat"):
        control = s.control(name)
        assert control is not None
        majority = merge_control(control, [ANSWER[name], ANSWER[name], []], None)
        assert majority.value == ANSWER[name], name


def test_a_repeated_identical_choice_is_one_label() -> None:
    converted = read_label_studio_config(
        '<View><Text name="t" value="$t"/><Choices name="c" toName="t">'
        '<Choice value="One"/><Choice value="Two"/><Choice value="Two"/></Choices></View>'
    )
    assert converted.schema.controls[0].model_dump()["labels"] == ["One", "Two"]


def refusal(xml: str) -> str:
    with pytest.raises(ValidationFailed) as caught:
        read_label_studio_config(xml)
    return " ".join(str(p["detail"]) for p in caught.value.errors)


def test_an_editable_chat_is_refused_by_name() -> None:
    detail = refusal(
        '<View><Chat name="chat" value="$chat" editable="true"/>'
        '<Rating name="r" toName="chat"/></View>'
    )
    assert "a conversation the annotator writes" in detail


def test_an_image_value_list_refusal_names_value_list() -> None:
    detail = refusal(
        '<View><Image name="pdf" valueList="$pages"/>'
        '<RectangleLabels name="r" toName="pdf"><Label value="a"/></RectangleLabels></View>'
    )
    assert 'valueList="$pages"' in detail
    assert 'not a "$field" reference' not in detail


def test_relation_results_are_refused_not_dropped() -> None:
    parsed = read_label_studio_config(
        '<View><Text name="t" value="$text"/><Labels name="ner" toName="t">'
        '<Label value="PER"/></Labels></View>'
    )
    result = [
        {
            "id": "a",
            "from_name": "ner",
            "to_name": "t",
            "type": "labels",
            "value": {"start": 0, "end": 3, "labels": ["PER"]},
        },
        {"type": "relation", "from_id": "a", "to_id": "a", "direction": "right"},
    ]
    with pytest.raises(ValidationFailed) as caught:
        answer_from_label_studio(parsed.schema, result, {"text": "Ada"})
    assert caught.value.errors[0]["pointer"] == "#/1"
    assert "relation" in caught.value.errors[0]["detail"]
