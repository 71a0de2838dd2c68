"""Properties of the new controls for any input, generated with hypothesis: validation never
raises and locates every problem; valid answers go to Label Studio and back unchanged; an
answer graded against itself scores 1."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.label_schema import parse_label_schema, validate_answer
from app.label_schema.grading import grade_answer
from app.label_schema.label_studio import answer_from_label_studio, label_studio_result
from tests.label_schema.test_label_schema_properties import json_values, resolve_parent

SCHEMA = parse_label_schema(
    {
        "controls": [
            {
                "name": "seg",
                "type": "segments",
                "field": "audio",
                "labels": ["a", "b"],
                "duration_field": "seconds",
                "attributes": [
                    {"name": "loud", "type": "choices", "labels": ["y", "n"], "required": True}
                ],
            },
            {"name": "pw", "type": "pairwise", "left_field": "l", "right_field": "r"},
            {"name": "rank", "type": "ranking", "field": "cands"},
            {
                "name": "tax",
                "type": "taxonomy",
                "field": "l",
                "taxonomy": [
                    {"value": "a", "children": [{"value": "b"}, {"value": "c"}]},
                    {"value": "d"},
                ],
            },
            {
                "name": "box",
                "type": "boxes",
                "field": "img",
                "labels": ["x"],
                "labels_field": "opts",
                "max_per_label": 3,
                "attributes": [
                    {"name": "note", "type": "text"},
                    {"name": "stars", "type": "rating", "max": 3},
                    {"name": "tags", "type": "choices", "labels": ["p", "q"], "multiple": True},
                ],
            },
        ]
    }
)
PAYLOAD = {
    "audio": "a.wav",
    "seconds": 60,
    "l": "left",
    "r": "right",
    "cands": [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}],
    "img": "i.jpg",
    "original_width": 640,
    "original_height": 480,
    "opts": [{"value": "y"}, "z"],
}
KEYS = ["seg", "pw", "rank", "tax", "box", "start", "end", "label", "attributes", "loud", "note"]


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6) | json_values)
def test_any_answer_gets_problems_not_exceptions_and_every_pointer_resolves(answer: Any) -> None:
    for problem in validate_answer(SCHEMA, answer, PAYLOAD):
        assert set(problem) == {"pointer", "detail"}
        assert problem["detail"]
        resolve_parent(answer, problem["pointer"])


seconds = st.floats(0, 59, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def segments(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(seconds)
    return {
        "start": start,
        "end": start + draw(st.floats(0.01, 1).map(lambda v: round(v, 3))),
        "label": draw(st.sampled_from(["a", "b"])),
        "attributes": {"loud": draw(st.sampled_from(["y", "n"]))},
    }


@st.composite
def boxes(draw: st.DrawFn) -> dict[str, Any]:
    x, y = draw(st.integers(0, 600)), draw(st.integers(0, 400))
    attributes = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "note": st.text(min_size=1, max_size=5),
                "stars": st.integers(1, 3),
                "tags": st.lists(st.sampled_from(["p", "q"]), min_size=1, unique=True),
            },
        )
    )
    box = {
        "x": x,
        "y": y,
        "width": draw(st.integers(1, 640 - x)),
        "height": draw(st.integers(1, 480 - y)),
        "label": draw(st.sampled_from(["x", "y", "z"])),
    }
    return {**box, "attributes": attributes} if attributes else box


answers = st.fixed_dictionaries(
    {
        "seg": st.lists(segments(), max_size=3),
        "pw": st.sampled_from(["left", "right"]),
        "rank": st.permutations(["c1", "c2", "c3"]),
        "tax": st.lists(
            st.sampled_from([["a"], ["a", "b"], ["a", "c"], ["d"]]), min_size=1, unique_by=str
        ),
        "box": st.lists(boxes(), max_size=3).filter(
            lambda bs: all(sum(b["label"] == label for b in bs) <= 3 for label in "xyz")
        ),
    }
)


@settings(max_examples=150)
@given(answers)
def test_valid_answers_go_to_label_studio_and_back_unchanged(answer: dict[str, Any]) -> None:
    assert validate_answer(SCHEMA, answer, PAYLOAD) == []
    results = label_studio_result(SCHEMA, answer, PAYLOAD)
    back = answer_from_label_studio(SCHEMA, results, PAYLOAD)
    assert back == answer


@settings(max_examples=100)
@given(answers)
def test_an_answer_graded_against_itself_scores_one(answer: dict[str, Any]) -> None:
    assert grade_answer(SCHEMA, answer, answer, PAYLOAD) == 1.0
