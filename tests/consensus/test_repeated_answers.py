"""Repeated (item, annotator) answers share one vote (`Votes.weights`): an annotator who answers an
item twice counts once, half for each label when they changed their mind; the offline reader
keeps every answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.consensus.dawid_skene import DawidSkene
from app.consensus.majority_vote import MajorityVote
from app.consensus.offline import read_labels
from app.consensus.votes import VoteEncoder, Votes
from app.consensus.weighted_vote import WeightedVote


def encode(rows: list[tuple[str, str, str]]) -> Votes:
    encoder: VoteEncoder[str, str] = VoteEncoder(["a", "b"])
    return encoder.encode(rows)


def test_weights_split_one_vote_over_an_annotators_answers_to_an_item() -> None:
    votes = encode([("i", "x", "a"), ("i", "x", "b"), ("i", "y", "b"), ("j", "x", "a")])
    assert votes.weights is not None
    assert votes.weights.tolist() == [0.5, 0.5, 1.0, 1.0]
    assert votes.vote_counts().tolist() == [[0.5, 1.5], [1.0, 0.0]]
    assert encode([("i", "x", "a"), ("i", "y", "b")]).weights is None


@pytest.mark.parametrize("estimator", [MajorityVote, WeightedVote, DawidSkene])
def test_an_annotator_repeating_themselves_does_not_outvote_two_others(estimator: type) -> None:
    rows = [("i", "x", "a")] * 3 + [("i", "y", "b"), ("i", "z", "b")]
    rows += [(f"k{n}", w, "a") for n in range(5) for w in "xyz"]  # everyone agrees elsewhere
    votes = encode(rows)
    fitted = estimator().fit(votes)
    assert fitted.labels_[0] == 1  # counted as three votes, x's "a" would win


def test_dawid_skene_counts_a_repeated_pair_once_in_the_matrices() -> None:
    once = encode([("i", "x", "a"), ("i", "y", "a"), ("j", "x", "b"), ("j", "y", "b")])
    twice = encode(
        [("i", "x", "a"), ("i", "x", "a"), ("i", "y", "a"), ("j", "x", "b"), ("j", "y", "b")]
    )
    a, b = DawidSkene().fit(once), DawidSkene().fit(twice)
    np.testing.assert_allclose(a.expected_counts_, b.expected_counts_)
    np.testing.assert_allclose(a.probas_, b.probas_)


def test_the_offline_reader_keeps_every_answer_and_counts_the_repeats(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("item,annotator,label\ni,x,a\ni,x,b\ni,y,b\n")
    answers = read_labels(path)
    assert answers.rows == [("i", "x", "a"), ("i", "x", "b"), ("i", "y", "b")]
    assert answers.repeated == 1
