from __future__ import annotations

import numpy as np
import pytest

from app.consensus.votes import NO_LABEL, VoteEncoder, Votes, item_keys, most_likely


def test_encoder_numbers_ids_and_labels_as_first_seen_and_maps_back() -> None:
    encoder: VoteEncoder[str, str] = VoteEncoder()
    votes = encoder.encode([("b", "ann", "cat"), ("a", "ann", "dog"), ("b", "bob", "dog")])
    assert encoder.item_ids == ["b", "a"]
    assert encoder.annotator_ids == ["ann", "bob"]
    assert encoder.label_values == ["cat", "dog"]
    assert votes.items.tolist() == [0, 1, 0]
    assert votes.annotators.tolist() == [0, 0, 1]
    assert votes.labels.tolist() == [0, 1, 1]
    assert (votes.n_items, votes.n_annotators, votes.n_labels) == (2, 2, 2)


def test_encoder_with_fixed_labels_rejects_others_and_encodes_gold() -> None:
    encoder: VoteEncoder[str, str] = VoteEncoder(["yes", "no"])
    votes = encoder.encode([("i1", "a", "no"), ("i2", "a", "yes")])
    assert votes.labels.tolist() == [1, 0]
    assert encoder.encode_gold({"i2": "no", "unknown-item": "yes"}).tolist() == [NO_LABEL, 1]
    with pytest.raises(ValueError, match="unknown label 'maybe'"):
        encoder.encode([("i3", "a", "maybe")])


def test_votes_reject_indices_out_of_range() -> None:
    with pytest.raises(ValueError, match="labels must be indices"):
        Votes(np.array([0]), np.array([0]), np.array([2]), 1, 1, 2)
    with pytest.raises(ValueError, match="same length"):
        Votes(np.array([0, 0]), np.array([0]), np.array([1]), 1, 1, 2)


def test_item_keys_are_ids_for_integers_and_stable_hashes_for_text() -> None:
    keys = item_keys([7, "item-7", "item-7"])
    assert keys[0] == 7
    assert keys[1] == keys[2] != 7
    # A BLAKE2b hash, not Python's per-process string hash: fixed across runs.
    assert int(item_keys(["item-7"])[0]) == int(keys[1])


def test_ties_are_broken_by_seed_and_item_key_alone() -> None:
    scores = np.full((400, 3), 1.0 / 3)
    keys = np.arange(400, dtype=np.uint64)
    first = most_likely(scores, keys, seed=1)
    assert np.array_equal(first, most_likely(scores, keys, seed=1))  # deterministic for a seed
    assert not np.array_equal(first, most_likely(scores, keys, seed=2))  # the seed matters
    assert set(first.tolist()) == {0, 1, 2}  # no label is favoured
    # An item alone gets the label it gets among all the others: the batch and online agree.
    alone = [int(most_likely(scores[:1], keys[i : i + 1], seed=1)[0]) for i in range(400)]
    assert alone == first.tolist()


def test_near_ties_within_rounding_are_ties_and_clear_winners_win() -> None:
    keys = np.arange(2, dtype=np.uint64)
    scores = np.array([[0.5, 0.5 + 1e-12], [0.3, 0.7]])
    tied = {int(most_likely(scores, keys, seed=s)[0]) for s in range(20)}
    assert tied == {0, 1}
    assert most_likely(scores, keys, seed=0)[1] == 1


def test_a_row_without_evidence_has_no_label() -> None:
    assert most_likely(np.zeros((1, 3)), np.zeros(1, dtype=np.uint64), 0).tolist() == [NO_LABEL]
