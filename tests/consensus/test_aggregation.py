"""The dispatcher: per control the right aggregator, batch and online agreeing."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from app.consensus.aggregation import aggregate_item, aggregate_job
from app.consensus.methods import Method, answers_needed
from app.consensus.model import ConsensusModel
from app.consensus.simulation import synthetic_crowd
from app.label_schema import LabelSchema, parse_label_schema

LABELS = ["cat", "dog", "bird", "fish"]


def single_choice_schema() -> LabelSchema:
    return parse_label_schema(
        {"controls": [{"name": "animal", "type": "choices", "field": "image", "labels": LABELS}]}
    )


def crowd_answers(
    n_items: int = 1500, n_annotators: int = 40, seed: int = 0
) -> tuple[dict[int, list[tuple[int, dict[str, Any]]]], np.ndarray]:
    crowd = synthetic_crowd(n_items, n_annotators, 4, 5, seed=seed)
    answers: dict[int, list[tuple[int, dict[str, Any]]]] = {i + 1000: [] for i in range(n_items)}
    for i, a, label in zip(
        crowd.votes.items, crowd.votes.annotators, crowd.votes.labels, strict=True
    ):
        answers[int(i) + 1000].append((int(a) + 500, {"animal": LABELS[label]}))
    return answers, crowd.truth


@pytest.mark.parametrize("method", list(Method))
def test_online_consensus_from_the_fitted_model_equals_the_batch_consensus(method: Method) -> None:
    schema = single_choice_schema()
    answers, truth = crowd_answers()
    gold = {1000 + i: {"animal": LABELS[truth[i]]} for i in range(0, 1500, 10)}
    job = aggregate_job(schema, answers, method, gold=gold, seed=4)
    model = ConsensusModel.from_json(json.loads(json.dumps(job.model.to_json())))
    for item, pairs in list(answers.items())[:300]:
        if item in gold:
            continue
        online = aggregate_item(schema, pairs, model, item_id=item, seed=4)
        assert online.answer == job.items[item].answer
        assert online.confidence == pytest.approx(job.items[item].confidence, abs=1e-9)


def test_online_consensus_equals_the_batch_one_when_the_shares_are_mixed_in() -> None:
    # No gold, and errors that hard items share: the default calibrates by mixing the vote
    # shares into Dawid-Skene's posterior, single choice and multiple choice alike.
    schema = parse_label_schema(
        {
            "controls": [
                {"name": "animal", "type": "choices", "field": "image", "labels": LABELS},
                {"name": "traits", "type": "choices", "field": "image", "multiple": True,
                 "labels": ["furry", "pet"]},
            ]
        }
    )  # fmt: skip
    crowd = synthetic_crowd(1500, 40, 4, 5, hard_items=0.25, hard_accuracy=0.6, seed=3)
    traits = {0: ["furry", "pet"], 1: ["furry", "pet"], 2: [], 3: ["pet"]}
    answers: dict[int, list[tuple[int, dict[str, Any]]]] = {i: [] for i in range(1500)}
    for i, a, label in zip(
        crowd.votes.items, crowd.votes.annotators, crowd.votes.labels, strict=True
    ):
        answers[int(i)].append((int(a), {"animal": LABELS[label], "traits": traits[label]}))
    job = aggregate_job(schema, answers, seed=5)
    model = ConsensusModel.from_json(json.loads(json.dumps(job.model.to_json())))
    question = model.questions["animal"]
    assert (question.method, question.temperature) == (Method.calibrated_dawid_skene, 1.0)
    assert question.share_weight > 0.1
    assert all(q.share_weight > 0 for q in model.multiple["traits"].values())
    for item, pairs in answers.items():
        online = aggregate_item(schema, pairs, model, item_id=item, seed=5)
        assert online.answer == job.items[item].answer
        assert online.confidences == pytest.approx(job.items[item].confidences, abs=1e-9)


def test_dawid_skene_through_the_dispatcher_beats_majority_vote() -> None:
    schema = single_choice_schema()
    answers, truth = crowd_answers(seed=2)

    def accuracy(method: Method) -> float:
        job = aggregate_job(schema, answers, method)
        return float(
            np.mean(
                [job.items[1000 + i].answer["animal"] == LABELS[t] for i, t in enumerate(truth)]
            )
        )

    assert accuracy(Method.dawid_skene) > accuracy(Method.majority_vote) + 0.04


def test_dawid_skene_falls_back_to_the_weighted_vote_while_annotators_have_few_answers() -> None:
    schema = single_choice_schema()
    small, _ = crowd_answers(n_items=60, n_annotators=40)  # ~8 answers per annotator
    big, _ = crowd_answers(n_items=1500, n_annotators=40)  # ~190 per annotator
    assert answers_needed(4) == 32
    small_job = aggregate_job(schema, small, Method.dawid_skene)
    big_job = aggregate_job(schema, big, Method.dawid_skene)
    assert small_job.model.questions["animal"].method is Method.weighted_vote
    assert not small_job.model.questions["animal"].confusions
    assert big_job.model.questions["animal"].method is Method.dawid_skene
    assert big_job.model.method is Method.dawid_skene


def test_without_a_model_a_skilled_annotator_outvotes_two_weak_ones() -> None:
    schema = single_choice_schema()
    answers = [(1, {"animal": "cat"}), (2, {"animal": "dog"}), (3, {"animal": "dog"})]
    skills = {1: 0.95, 2: 0.4, 3: 0.4}
    assert aggregate_item(schema, answers, skills=skills).answer == {"animal": "cat"}
    assert aggregate_item(schema, answers).answer == {"animal": "dog"}  # everyone at the default
    plain = aggregate_item(schema, answers, method="majority_vote", skills=skills)
    assert plain.answer == {"animal": "dog"}
    assert plain.confidence == pytest.approx(2 / 3)


MIXED = parse_label_schema(
    {
        "controls": [
            {"name": "sentiment", "type": "choices", "field": "text",
             "labels": ["pos", "neg", "neutral"]},
            {"name": "topics", "type": "choices", "field": "text", "multiple": True,
             "labels": ["sport", "politics", "tech"], "min": 1},
            {"name": "stars", "type": "rating", "max": 5},
            {"name": "price", "type": "number", "tolerance": 1},
            {"name": "summary", "type": "text", "field": "text"},
            {"name": "entities", "type": "spans", "field": "text", "labels": ["PER", "ORG"]},
            {"name": "objects", "type": "boxes", "field": "image", "labels": ["car"]},
        ]
    }
)  # fmt: skip

PER = {"start": 0, "end": 4, "label": "PER"}
CAR = {"x": 0, "y": 0, "width": 10, "height": 10, "label": "car"}


def mixed_answers() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    return {
        "item-1": [
            ("ann", {"sentiment": "pos", "topics": ["sport", "tech"], "stars": 4, "price": 10,
                     "summary": "a good match", "entities": [PER], "objects": [CAR]}),
            ("bob", {"sentiment": "pos", "topics": ["sport"], "stars": 4, "price": 11,
                     "summary": "a good match", "entities": [PER], "objects": [CAR]}),
            ("cid", {"sentiment": "neg", "topics": ["sport"], "stars": 2, "price": 90,
                     "summary": "a goood match", "entities": [], "objects": []}),
        ],
        "item-2": [
            ("ann", {"sentiment": "neutral", "topics": [], "stars": 3}),
            ("bob", {"sentiment": "neutral", "topics": []}),
        ],
    }  # fmt: skip


@pytest.mark.parametrize("method", list(Method))
def test_every_control_type_gets_its_aggregator(method: Method) -> None:
    job = aggregate_job(MIXED, mixed_answers(), method)
    first = job.items["item-1"]
    assert first.answer == {
        "sentiment": "pos",
        "topics": ["sport"],
        "stars": 4,
        "price": 11,
        "summary": "a good match",
        "entities": [PER],
        "objects": [{"x": 0.0, "y": 0.0, "width": 10.0, "height": 10.0, "label": "car"}],
    }
    assert first.answer_count == 3
    assert first.confidence == min(first.confidences.values())
    assert set(first.confidences) == {c.name for c in MIXED.controls}
    second = job.items["item-2"]
    # Only the controls someone answered; `topics` needs one label, so the likeliest is added.
    assert set(second.answer) == {"sentiment", "topics", "stars"}
    assert len(second.answer["topics"]) == 1
    assert second.answer["sentiment"] == "neutral"


@pytest.mark.parametrize("method", list(Method))
def test_online_consensus_equals_the_batch_one_for_every_control_type(method: Method) -> None:
    answers = mixed_answers()
    job = aggregate_job(MIXED, answers, method, seed=1)
    for item, pairs in answers.items():
        online = aggregate_item(MIXED, pairs, job.model, item_id=item, seed=1)
        assert online.answer == job.items[item].answer
        assert online.confidences == pytest.approx(job.items[item].confidences)


def test_the_odd_one_out_gets_the_lowest_skill() -> None:
    job = aggregate_job(MIXED, mixed_answers(), Method.weighted_vote)
    skills = {a: job.annotators[a].skill for a in ("ann", "bob", "cid")}
    assert skills["cid"] < min(skills["ann"], skills["bob"])
    assert job.annotators["cid"].answers == 1
    assert set(job.annotators["ann"].controls) == {c.name for c in MIXED.controls}


def test_gold_items_get_their_gold_answer_and_annotators_are_judged_against_it() -> None:
    gold = {"item-1": {"sentiment": "neg", "price": 90}}
    job = aggregate_job(MIXED, mixed_answers(), Method.weighted_vote, gold=gold)
    first = job.items["item-1"]
    assert first.answer["sentiment"] == "neg"
    assert first.answer["price"] == 90
    assert first.confidences["sentiment"] == first.confidences["price"] == 1.0
    price_skill = {a: job.annotators[a].controls["price"] for a in ("ann", "bob", "cid")}
    assert price_skill["cid"] > price_skill["ann"]


def test_results_are_deterministic_for_a_seed() -> None:
    answers, _ = crowd_answers(n_items=400, n_annotators=20)
    schema = single_choice_schema()
    one = aggregate_job(schema, answers, Method.calibrated_dawid_skene, seed=9)
    two = aggregate_job(schema, answers, Method.calibrated_dawid_skene, seed=9)
    assert one == two


def test_the_model_survives_json_and_refuses_another_version() -> None:
    model = aggregate_job(MIXED, mixed_answers(), Method.dawid_skene).model
    assert ConsensusModel.from_json(json.loads(json.dumps(model.to_json()))) == model
    data = model.to_json() | {"version": 99}
    with pytest.raises(ValueError, match="version 99"):
        ConsensusModel.from_json(data)


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="best_guess"):
        aggregate_job(MIXED, mixed_answers(), "best_guess")
