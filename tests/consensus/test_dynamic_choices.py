"""Choices whose options come from the item (`labels_field`, Label Studio's `value="$options"`):
the consensus is a vote over the options the answers carry, single and multiple, in the batch
fit and online alike (before: an empty answer with confidence 0)."""

from __future__ import annotations

from typing import Any

import pytest

from app.consensus.aggregation import aggregate_item, aggregate_job
from app.consensus.dynamic_choices import merge_dynamic_choices
from app.label_schema import ChoicesControl, LabelSchema, parse_label_schema


def schema(multiple: bool = False, labels: list[str] | None = None) -> LabelSchema:
    control: dict[str, Any] = {
        "name": "dynamic_choices",
        "type": "choices",
        "field": "text",
        "labels_field": "options",
        "labels": labels or [],
    }
    if multiple:
        control["multiple"] = True
    return parse_label_schema({"controls": [control]})


def control_of(s: LabelSchema) -> ChoicesControl:
    [control] = s.controls
    assert isinstance(control, ChoicesControl)
    return control


def test_three_annotators_agreeing_on_an_items_option_make_its_consensus() -> None:
    s = schema()
    answers = [(a, {"dynamic_choices": "r1"}) for a in (1, 2, 3)]
    online = aggregate_item(s, answers)
    assert online.answer == {"dynamic_choices": "r1"}
    # One-coin weights at the default skill 0.7 with K = 2 (r1 and "another option"): odds 7:3
    # per vote, three votes 343:27.
    assert online.confidence == pytest.approx(343 / 370)
    batch = aggregate_job(s, {10: answers, 11: [(1, {"dynamic_choices": "r7"})]})
    assert batch.items[10].answer == {"dynamic_choices": "r1"}
    assert batch.items[11].answer == {"dynamic_choices": "r7"}
    assert 0.5 < batch.items[11].confidence < batch.items[10].confidence < 1.0


def test_the_majority_option_wins_among_the_options_the_answers_carry() -> None:
    answers = [(1, {"dynamic_choices": "b"}), (2, {"dynamic_choices": "a"})]
    answers.append((3, {"dynamic_choices": "b"}))
    found = aggregate_item(schema(), answers, method="majority_vote")
    assert found.answer == {"dynamic_choices": "b"}
    assert found.confidence == pytest.approx(2 / 3)


def test_fixed_labels_count_among_the_options_and_a_split_is_not_confident() -> None:
    control = control_of(schema(labels=["none"]))
    merged = merge_dynamic_choices(control, ["r1", "r2"], [0.7, 0.7])
    # K = 3 (none, r1, r2): a 1-1 split between two equal annotators is a coin flip between
    # them, with a little left for "none".
    assert merged.value == "r1"
    assert merged.confidence < 0.5
    assert merged.scores == (1.0, 0.0)


def test_multiple_choice_keeps_the_options_most_annotators_picked() -> None:
    s = schema(multiple=True)
    answers = [
        (1, {"dynamic_choices": ["r1", "r2"]}),
        (2, {"dynamic_choices": ["r1"]}),
        (3, {"dynamic_choices": ["r1", "r3"]}),
    ]
    online = aggregate_item(s, answers)
    assert online.answer == {"dynamic_choices": ["r1"]}
    assert 0.0 < online.confidence < 1.0
    batch = aggregate_job(s, {5: answers})
    assert batch.items[5].answer == {"dynamic_choices": ["r1"]}
    # Every annotator graded against the consensus by Jaccard: 1/2, 1, 1/2, smoothed.
    skills = {a: e.skill for a, e in batch.annotators.items()}
    assert skills[2] > skills[1] == skills[3]


def test_a_malformed_answer_is_ignored() -> None:
    control = control_of(schema())
    merged = merge_dynamic_choices(control, [3, "r1"], None)
    assert (merged.value, merged.scores) == ("r1", (0.0, 1.0))
    assert merge_dynamic_choices(control, [None], None).value is None
