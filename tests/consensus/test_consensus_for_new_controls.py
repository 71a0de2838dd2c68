"""Consensus for the controls a whole-value vote cannot settle (app.consensus: segments,
rankings, taxonomy, attributes), on toy data whose answer is known, and through the quality
dispatcher every job's consensus goes through."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from app.consensus.aggregation import aggregate_item
from app.consensus.attributes import aggregate_attributes
from app.consensus.rankings import aggregate_pairwise, aggregate_ranking, bradley_terry
from app.consensus.segments import aggregate_segments
from app.consensus.taxonomy import aggregate_taxonomy
from app.label_schema import ChoicesAttribute, TextAttribute, parse_label_schema
from app.label_schema.matching import interval_iou, kendall_tau


def seg(start: float, end: float, label: str = "a", **extra: Any) -> dict[str, Any]:
    return {"start": start, "end": end, "label": label, **extra}


def test_interval_iou() -> None:
    assert interval_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert interval_iou((0, 10), (10, 20)) == 0.0
    assert interval_iou((0, 10), (0, 10)) == 1.0


def test_segments_backed_by_a_majority_are_kept_at_their_median() -> None:
    answers = [
        [seg(0, 10), seg(20, 30, "b")],
        [seg(1, 11), seg(21, 29, "b")],
        [seg(0.5, 9), seg(50, 60)],  # a stray segment only this annotator saw
    ]
    consensus, confidence = aggregate_segments(answers, 0.5)
    assert consensus == [seg(0.5, 10), seg(20.5, 29.5, "b")]
    # Clusters: 3/3 kept, 2/3 kept, 1/3 dropped (2/3 agree with dropping it).
    assert confidence == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_segments_of_one_annotator_never_merge_and_labels_do_not_mix() -> None:
    answers = [[seg(0, 10), seg(1, 11)], [seg(0, 10, "b")], [seg(0, 10)]]
    consensus, _ = aggregate_segments(answers, 0.5)
    assert consensus == [seg(0, 10)]  # annotators 0 and 2 agree; 0's second copy is alone


def test_nothing_marked_is_a_confident_nothing() -> None:
    assert aggregate_segments([[], [], []], 0.5) == ([], 1.0)


def test_segment_attributes_take_the_majority_of_their_cluster() -> None:
    attributes = (ChoicesAttribute(name="loud", labels=["yes", "no"]),)
    answers = [
        [seg(0, 10, attributes={"loud": "yes"})],
        [seg(0, 10, attributes={"loud": "no"})],
        [seg(0, 10, attributes={"loud": "yes"})],
    ]
    [merged], _ = aggregate_segments(answers, 0.5, attributes)
    assert merged["attributes"] == {"loud": "yes"}


def test_attributes_by_majority_and_text_by_medoid() -> None:
    attributes = (
        ChoicesAttribute(name="colours", labels=["red", "blue"], multiple=True),
        TextAttribute(name="plate"),
    )
    regions = [
        {"attributes": {"colours": ["red", "blue"], "plate": "AB-123"}},
        {"attributes": {"colours": ["blue", "red"], "plate": "AB-128"}},
        {"attributes": {"colours": ["red"], "plate": "XY-999"}},
    ]
    assert aggregate_attributes(attributes, regions) == {
        "colours": ["blue", "red"],  # one set, seen in two orders
        "plate": "AB-123",
    }
    # An attribute fewer than half the regions answer is left out.
    assert aggregate_attributes(attributes, [{"attributes": {"plate": "x"}}, {}, {}]) == {}


def test_bradley_terry_recovers_known_strengths() -> None:
    truth = {"a": 0.5, "b": 0.3, "c": 0.2}
    rng = random.Random(7)
    games = []
    for _ in range(3000):
        x, y = rng.sample(sorted(truth), 2)
        winner = x if rng.random() < truth[x] / (truth[x] + truth[y]) else y
        games.append((winner, y if winner == x else x))
    fitted = bradley_terry(games)
    assert fitted == pytest.approx(truth, abs=0.03)
    assert sum(fitted.values()) == pytest.approx(1.0)


def test_bradley_terry_with_two_candidates_is_the_share_of_wins() -> None:
    fitted = bradley_terry([("l", "r")] * 3 + [("r", "l")])
    assert fitted["l"] / (fitted["l"] + fitted["r"]) == pytest.approx(0.75)
    assert bradley_terry([]) == {}


def test_pairwise_consensus_is_the_preferred_side_with_its_probability() -> None:
    assert aggregate_pairwise(["left", "left", "right"]) == ("left", pytest.approx(2 / 3))
    assert aggregate_pairwise(["right"]) == ("right", 1.0)
    side, confidence = aggregate_pairwise(["right", "left"])
    assert (side, confidence) == ("right", 0.5)  # a tie goes to the side chosen first


def test_kendall_tau() -> None:
    assert kendall_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert kendall_tau(["c", "b", "a"], ["a", "b", "c"]) == -1.0
    assert kendall_tau(["b", "a", "c"], ["a", "b", "c"]) == pytest.approx(1 / 3)


@pytest.mark.parametrize("method", ["borda", "bradley_terry"])
def test_ranking_consensus_recovers_the_order_most_annotators_share(method: Any) -> None:
    answers = [["a", "b", "c", "d"], ["a", "c", "b", "d"], ["b", "a", "c", "d"]]
    consensus, confidence = aggregate_ranking(answers, method)
    assert consensus == ["a", "b", "c", "d"]
    taus = [kendall_tau(order, consensus) for order in answers]
    assert confidence == pytest.approx(sum((t + 1) / 2 for t in taus) / 3)


def test_borda_points_decide_and_ties_keep_the_first_annotators_order() -> None:
    # Borda points: a 2+0 = 2, b 1+2 = 3, c 0+1 = 1.
    assert aggregate_ranking([["a", "b", "c"], ["b", "c", "a"]])[0] == ["b", "a", "c"]
    assert aggregate_ranking([["x", "y"], ["y", "x"]])[0] == ["x", "y"]


def test_rankings_of_other_candidates_are_left_out() -> None:
    consensus, confidence = aggregate_ranking([["a", "b"], ["b", "a", "z"]])
    assert (consensus, confidence) == (["a", "b"], 1.0)


def test_taxonomy_consensus_is_the_deepest_majority_path() -> None:
    answers = [
        [["Animal", "Cat"]],
        [["Animal", "Dog"]],
        [["Animal", "Cat"], ["Plant"]],
    ]
    paths, confidence = aggregate_taxonomy(answers)
    assert paths == [["Animal", "Cat"]]  # Animal 3/3, Cat 2/3, Dog 1/3, Plant 1/3
    assert confidence == pytest.approx(2 / 3)
    split = [[["Animal", "Cat"]], [["Animal", "Dog"]], [["Animal", "Bird"]]]
    assert aggregate_taxonomy(split) == ([["Animal"]], 1.0)
    assert aggregate_taxonomy([[["A"]], [["B"]], [["C"]]]) == ([], pytest.approx(2 / 3))
    assert aggregate_taxonomy([[], []]) == ([], 1.0)


def test_the_jobs_consensus_aggregates_new_controls_per_control() -> None:
    schema = parse_label_schema(
        {
            "controls": [
                {"name": "pick", "type": "choices", "field": "t", "labels": ["x", "y"]},
                {"name": "s", "type": "segments", "field": "a", "labels": ["a"]},
                {"name": "p", "type": "pairwise", "left_field": "l", "right_field": "r"},
                {"name": "r", "type": "ranking", "field": "c"},
            ]
        }
    )
    answers = [
        {"pick": "x", "s": [seg(0, 10)], "p": "left", "r": ["1", "2"]},
        {"pick": "x", "s": [seg(0, 9)], "p": "left", "r": ["1", "2"]},
        {"pick": "y", "s": [], "p": "right", "r": ["2", "1"]},
    ]
    found = aggregate_item(schema, list(enumerate(answers)), None, "majority_vote")
    assert found.answer == {"pick": "x", "s": [seg(0, 9.5)], "p": "left", "r": ["1", "2"]}
    assert found.confidences == pytest.approx({"pick": 2 / 3, "s": 2 / 3, "p": 2 / 3, "r": 2 / 3})
    assert found.confidence == pytest.approx(2 / 3)  # the least sure control's


def test_every_permutation_of_answers_gives_the_same_segments() -> None:
    answers = [[seg(0, 10)], [seg(2, 12)], [seg(1, 9), seg(40, 45)]]
    results = {
        repr(aggregate_segments(list(order), 0.5)) for order in itertools.permutations(answers)
    }
    assert len(results) == 1
