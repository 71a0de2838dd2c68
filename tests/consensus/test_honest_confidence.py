"""Honest confidence (issue 21, item 7): one answer is not certainty, and a 1-1 split is not a
decision, whatever the method and the fitted skills, in the batch fit and online alike."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.consensus.aggregation import aggregate_item, aggregate_job
from app.consensus.honest import honest_confidence
from app.consensus.weighted_vote import DEFAULT_SKILL
from app.core.db import Database
from app.label_schema import LabelSchema, parse_label_schema
from tests.consensus.test_consensus_service import answer_task, results_of, tasks_of
from tests.jobs.factories import active_job
from tests.support import Account

SCHEMA = parse_label_schema(
    {"controls": [{"name": "c", "type": "choices", "field": "t", "labels": ["a", "b"]}]}
)


Answers = dict[Any, list[tuple[Any, dict[str, Any]]]]


def crowd(skills: dict[int, float], items: int = 60, seed: int = 1) -> Answers:
    """Every annotator answers every item, right with their skill."""
    rng = random.Random(seed)
    out: Answers = {}
    for item in range(items):
        truth = rng.choice("ab")
        out[item] = [
            (a, {"c": truth if rng.random() < p else "ab".replace(truth, "")})
            for a, p in skills.items()
        ]
    return out


def test_one_answer_from_a_flawless_annotator_is_their_skill_not_certainty() -> None:
    fit = aggregate_job(SCHEMA, crowd({1: 1.0, 2: 0.8, 3: 0.7}))
    skill = fit.model.questions["c"].skills["1"]
    online = aggregate_item(SCHEMA, [(1, {"c": "a"})], fit.model)
    # Before: 0.922, Dawid-Skene's posterior mixed with a vote share of 1.
    assert online.confidence == pytest.approx(skill)
    assert skill < 0.9
    batch = aggregate_job(SCHEMA, {**crowd({1: 1.0, 2: 0.8, 3: 0.7}), 99: [(1, {"c": "a"})]})
    assert batch.items[99].confidence <= 0.99


def test_a_one_one_split_between_a_strong_and_a_weak_annotator_is_an_even_chance() -> None:
    fit = aggregate_job(SCHEMA, crowd({1: 0.97, 2: 0.8, 3: 0.6}))
    split = aggregate_item(SCHEMA, [(1, {"c": "a"}), (3, {"c": "b"})], fit.model)
    assert split.answer == {"c": "a"}  # the stronger annotator's label still wins
    assert split.confidence == 0.5  # before: 0.904
    batch = aggregate_job(
        SCHEMA, {**crowd({1: 0.97, 2: 0.8, 3: 0.6}), 99: [(1, {"c": "a"}), (3, {"c": "b"})]}
    )
    assert batch.items[99].confidence == 0.5


def test_one_answer_under_a_plain_vote_and_in_a_merged_control_is_the_default_skill() -> None:
    assert aggregate_item(SCHEMA, [(1, {"c": "a"})], method="majority_vote").confidence == (
        DEFAULT_SKILL  # before: 1.0, the vote share
    )
    text = LabelSchema.model_validate(
        {"controls": [{"name": "note", "type": "text", "field": "t"}]}
    )
    assert aggregate_item(text, [(1, {"note": "hello"})]).confidence == DEFAULT_SKILL
    # The batch fit's second merge weighs the annotator by their smoothed grade, (1 + 2·0.7) / 3.
    batch = aggregate_job(text, {1: [(1, {"note": "hello"})]})
    assert batch.items[1].confidence == pytest.approx(0.8)


def test_the_rules() -> None:
    assert honest_confidence(0.99, 0.8, [1, 0], 0) == 0.8
    assert honest_confidence(0.755, 0.9, [1, 1], 0) == 0.5
    assert honest_confidence(0.9, 0.9, [1, 2, 0], 0) == 0.5  # the winner trails the vote
    assert honest_confidence(0.6, 0.9, [2, 2, 2], 1) == pytest.approx(1 / 3)
    assert honest_confidence(0.9, 0.5, [2, 1], 0) == 0.9  # two answers: no cap


def test_a_single_answer_does_not_pass_a_dynamic_overlap_threshold_of_075(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = active_job(
        client,
        client_account,
        items=1,
        overlap={"min": 1, "max": 3},
        confidence_threshold=0.75,
        consensus_method="majority_vote",
    )
    answer_task(client, make_account, job_id, ["positive"])  # before: 1.0, complete
    [task] = tasks_of(db, job_id)
    assert (task.status.value, task.overlap_target) == ("open", 2)
    answer_task(client, make_account, job_id, ["negative"])  # a 1-1 split: 0.5
    [task] = tasks_of(db, job_id)
    assert (task.status.value, task.overlap_target) == ("open", 3)
    answer_task(client, make_account, job_id, ["positive"])
    [result] = results_of(db, job_id).values()
    assert (result.answer, result.answer_count) == ({"sentiment": "positive"}, 3)
