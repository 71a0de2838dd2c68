"""The categorical estimators on synthetic crowds with a known truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from app.consensus.calibrated_dawid_skene import CalibratedDawidSkene
from app.consensus.calibration import expected_calibration_error
from app.consensus.dawid_skene import DawidSkene
from app.consensus.majority_vote import MajorityVote
from app.consensus.simulation import SyntheticCrowd, synthetic_crowd
from app.consensus.votes import NO_LABEL, Votes
from app.consensus.weighted_vote import WeightedVote


@pytest.fixture(scope="module")
def crowd() -> SyntheticCrowd:
    # 10% spammers, 5% adversaries, the rest 55-95% accurate with uneven errors.
    return synthetic_crowd(3000, 60, 4, 5, seed=0)


def accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    return float((labels == truth).mean())


def test_dawid_skene_beats_majority_vote_with_spammers_and_adversaries(
    crowd: SyntheticCrowd,
) -> None:
    ds = DawidSkene().fit(crowd.votes)
    mv = MajorityVote().fit(crowd.votes)
    assert accuracy(ds.labels_, crowd.truth) >= 0.95
    assert accuracy(ds.labels_, crowd.truth) > accuracy(mv.labels_, crowd.truth) + 0.04


def test_dawid_skene_recovers_the_confusion_matrices(crowd: SyntheticCrowd) -> None:
    ds = DawidSkene().fit(crowd.votes)
    busy = crowd.votes.answers_per_annotator() >= 200
    assert busy.sum() >= 15
    # Total-variation distance of each row, averaged with the true labels' prior.
    distance = 0.5 * np.abs(ds.confusions_ - crowd.confusions).sum(axis=2) @ ds.priors_
    assert distance[busy].mean() < 0.07
    assert distance[busy].max() < 0.15
    # The adversaries' permutations are learnt, not mistaken for noise.
    adversaries = [a for a, kind in enumerate(crowd.kinds) if kind == "adversary" and busy[a]]
    for a in adversaries:
        assert np.array_equal(ds.confusions_[a].argmax(axis=1), crowd.confusions[a].argmax(axis=1))


def test_dawid_skene_skills_rank_annotators_as_their_true_accuracy(crowd: SyntheticCrowd) -> None:
    ds = DawidSkene().fit(crowd.votes)
    true_skill = (
        np.einsum("akk->ak", crowd.confusions) @ np.bincount(crowd.truth) / crowd.truth.size
    )
    assert spearmanr(ds.skills_, true_skill).statistic > 0.9


@pytest.mark.parametrize(
    "make",
    [MajorityVote, WeightedVote, DawidSkene, CalibratedDawidSkene],
    ids=["majority", "weighted", "dawid-skene", "calibrated"],
)
def test_results_are_deterministic_for_a_seed(make: type, crowd: SyntheticCrowd) -> None:
    first = make(seed=3).fit(crowd.votes)
    again = make(seed=3).fit(crowd.votes)
    assert np.array_equal(first.labels_, again.labels_)
    assert np.array_equal(first.probas_, again.probas_)
    assert np.array_equal(first.skills_, again.skills_)


def test_only_ties_depend_on_the_seed(crowd: SyntheticCrowd) -> None:
    one, other = MajorityVote(seed=1).fit(crowd.votes), MajorityVote(seed=2).fit(crowd.votes)
    differ = one.labels_ != other.labels_
    assert differ.any()  # some 2-2 splits fell the other way
    top = np.sort(one.probas_, axis=1)
    assert np.all(top[differ, -1] == top[differ, -2])  # and only ties did


def test_gold_items_are_clamped_and_teach_the_matrices() -> None:
    crowd = synthetic_crowd(2000, 40, 3, 3, adversaries=0.2, seed=5)
    gold = np.where(np.arange(2000) % 5 == 0, crowd.truth, NO_LABEL)
    without = DawidSkene().fit(crowd.votes)
    with_gold = DawidSkene().fit(crowd.votes, gold)
    known = gold != NO_LABEL
    assert np.array_equal(with_gold.labels_[known], crowd.truth[known])
    assert np.all(with_gold.confidence_[known] == 1.0)
    unknown = ~known
    assert accuracy(with_gold.labels_[unknown], crowd.truth[unknown]) >= accuracy(
        without.labels_[unknown], crowd.truth[unknown]
    )


def test_majority_vote_gives_vote_shares_and_leaves_unanswered_items_without_a_label() -> None:
    votes = Votes(
        items=np.array([0, 0, 0, 1]),
        annotators=np.array([0, 1, 2, 0]),
        labels=np.array([1, 1, 0, 2]),
        n_items=3,
        n_annotators=3,
        n_labels=3,
    )
    mv = MajorityVote().fit(votes)
    assert mv.labels_.tolist() == [1, 2, NO_LABEL]
    assert mv.confidence_.tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert mv.probas_[2].tolist() == [0.0, 0.0, 0.0]


def test_weighted_vote_lets_the_more_skilled_annotator_win() -> None:
    votes = Votes(np.array([0, 0]), np.array([0, 1]), np.array([0, 1]), 1, 2, 2)
    assert WeightedVote(skills=np.array([0.9, 0.6])).fit(votes).labels_.tolist() == [0]
    assert WeightedVote(skills=np.array([0.6, 0.9])).fit(votes).labels_.tolist() == [1]
    # One-coin posterior: log-odds weights log(9) and log(1.5) -> P(label 0) = 9 / (9 + 1.5).
    fitted = WeightedVote(skills=np.array([0.9, 0.6])).fit(votes)
    assert fitted.confidence_[0] == pytest.approx(9 / 10.5)


def test_weighted_vote_estimates_unknown_skills_from_agreement(crowd: SyntheticCrowd) -> None:
    wv = WeightedVote().fit(crowd.votes)
    mv = MajorityVote().fit(crowd.votes)
    true_skill = (
        np.einsum("akk->ak", crowd.confusions) @ np.bincount(crowd.truth) / crowd.truth.size
    )
    assert spearmanr(wv.skills_, true_skill).statistic > 0.8
    assert accuracy(wv.labels_, crowd.truth) > accuracy(mv.labels_, crowd.truth)


def test_calibrated_dawid_skene_softens_an_over_confident_crowd_without_changing_labels() -> None:
    # Hard items fool every annotator the same way: Dawid-Skene is then over-confident.
    crowd = synthetic_crowd(3000, 60, 4, 7, hard_items=0.15, seed=1)
    gold = np.where(np.random.default_rng(1).random(3000) < 0.2, crowd.truth, NO_LABEL)
    ds = DawidSkene().fit(crowd.votes, gold)
    calibrated = CalibratedDawidSkene().fit(crowd.votes, gold)
    assert calibrated.temperature_ > 1.5
    assert calibrated.calibrated_on_ == int((gold != NO_LABEL).sum())
    assert np.array_equal(calibrated.labels_, ds.labels_)
    unseen = gold == NO_LABEL
    correct = calibrated.labels_[unseen] == crowd.truth[unseen]
    before = expected_calibration_error(ds.confidence_[unseen], correct)
    after = expected_calibration_error(calibrated.confidence_[unseen], correct)
    assert before > 0.07
    assert after < before / 2


def test_without_gold_the_posterior_is_not_over_confident_where_errors_correlate() -> None:
    # A quarter of the items are hard: every annotator is right on them with probability 0.6
    # only, and wrong the same way (one decoy label per item). No gold is given.
    crowd = synthetic_crowd(2000, 40, 4, 5, hard_items=0.25, hard_accuracy=0.6, seed=1)
    ds = DawidSkene().fit(crowd.votes)
    calibrated = CalibratedDawidSkene().fit(crowd.votes)
    assert (calibrated.temperature_, calibrated.calibrated_on_) == (1.0, 0)
    assert 0.1 < calibrated.share_weight_ < 0.5
    assert np.array_equal(calibrated.labels_, ds.labels_)
    correct = ds.labels_ == crowd.truth
    before = expected_calibration_error(ds.confidence_, correct)
    after = expected_calibration_error(calibrated.confidence_, correct)
    assert before > 0.06
    assert after < before / 2


def test_a_crowd_without_correlated_errors_gets_little_of_the_vote_shares(
    crowd: SyntheticCrowd,
) -> None:
    ds = DawidSkene().fit(crowd.votes)
    calibrated = CalibratedDawidSkene().fit(crowd.votes)
    assert 0.0 <= calibrated.share_weight_ < 0.1
    correct = ds.labels_ == crowd.truth
    before = expected_calibration_error(ds.confidence_, correct)
    assert expected_calibration_error(calibrated.confidence_, correct) < before + 0.01


def test_with_too_little_gold_the_posterior_is_mixed_with_the_vote_shares(
    crowd: SyntheticCrowd,
) -> None:
    gold = np.full(crowd.votes.n_items, NO_LABEL)
    gold[:10] = crowd.truth[:10]
    calibrated = CalibratedDawidSkene(min_gold=30).fit(crowd.votes, gold)
    plain = DawidSkene().fit(crowd.votes, gold)
    w = calibrated.share_weight_
    assert calibrated.temperature_ == 1.0
    assert w > 0.0
    counts = crowd.votes.vote_counts()
    shares = counts / counts.sum(axis=1, keepdims=True)
    expected = (1 - w) * plain.probas_ + w * shares
    assert np.allclose(calibrated.probas_[10:], expected[10:])
    assert np.array_equal(calibrated.probas_[:10], plain.probas_[:10])  # gold stays clamped
    assert np.array_equal(calibrated.labels_, plain.labels_)
    rows = np.arange(crowd.votes.n_items)
    assert np.array_equal(calibrated.confidence_, calibrated.probas_[rows, calibrated.labels_])


def test_with_enough_gold_the_temperature_calibrates_and_no_shares_are_mixed_in(
    crowd: SyntheticCrowd,
) -> None:
    gold = np.full(crowd.votes.n_items, NO_LABEL)
    gold[:300] = crowd.truth[:300]
    calibrated = CalibratedDawidSkene().fit(crowd.votes, gold)
    assert calibrated.calibrated_on_ == 300
    assert calibrated.share_weight_ == 0.0


def test_gold_must_be_one_label_index_per_item(crowd: SyntheticCrowd) -> None:
    with pytest.raises(ValueError, match="one entry per item"):
        DawidSkene().fit(crowd.votes, np.array([0, 1]))
    with pytest.raises(ValueError, match="label indices"):
        MajorityVote().fit(crowd.votes, np.full(crowd.votes.n_items, 7))
