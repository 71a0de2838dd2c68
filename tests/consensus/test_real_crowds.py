"""The estimators on the real crowd label sets (../shared/data/crowd; present in CI, so a missing
folder fails these tests instead of skipping them)."""

from __future__ import annotations

import numpy as np
import pytest

from app.consensus.calibrated_dawid_skene import CalibratedDawidSkene
from app.consensus.dawid_skene import DawidSkene
from app.consensus.evaluation import cross_fitted, score_on_gold
from app.consensus.majority_vote import MajorityVote
from tests.consensus.crowds import real_crowd

# crowd-kit 1.4.2's best accuracy on each set (../shared/data/crowd/README.md), in percent.
CROWD_KIT_BEST = {"rte": 92.75, "temp": 94.37, "product": 93.97, "dog": 84.26}


@pytest.mark.parametrize("name", sorted(CROWD_KIT_BEST))
def test_dawid_skene_is_within_0_3_points_of_crowd_kits_best(name: str) -> None:
    votes, gold = real_crowd(name)
    ds = DawidSkene().fit(votes)
    accuracy = 100 * score_on_gold(ds.labels_, ds.confidence_, gold).accuracy
    assert accuracy >= CROWD_KIT_BEST[name] - 0.3
    mv = MajorityVote().fit(votes)
    assert accuracy > 100 * score_on_gold(mv.labels_, mv.confidence_, gold).accuracy


def test_calibration_on_a_tenth_of_gold_fixes_dawid_skenes_over_confidence_on_dogs() -> None:
    votes, gold = real_crowd("dog")
    plain = DawidSkene().fit(votes)
    before = score_on_gold(plain.labels_, plain.confidence_, gold)
    labels, confidence = cross_fitted(
        votes,
        gold,
        lambda v, g: CalibratedDawidSkene().fit(v, g),
        folds=10,
        known="next",
    )
    after = score_on_gold(labels, confidence, gold)
    assert before.ece > 0.14  # crowd-kit's Dawid-Skene: 0.151
    assert after.ece < 0.0731  # crowd-kit's best calibrated method here (Wawa)
    assert after.accuracy >= before.accuracy - 0.005


# crowd-kit 1.4.2's lowest ECE (15 bins) on each set, blind: GLAD, GLAD, DawidSkene, Wawa
# (README, "Aggregation benchmark").
CROWD_KIT_BEST_BLIND_ECE = {"rte": 0.0429, "temp": 0.0543, "product": 0.0287, "dog": 0.0731}


@pytest.mark.parametrize("name", ["rte", "temp", "product"])
def test_without_gold_the_default_is_calibrated_as_well_as_crowd_kits_best(name: str) -> None:
    votes, gold = real_crowd(name)
    plain = DawidSkene().fit(votes)
    calibrated = CalibratedDawidSkene().fit(votes)
    assert np.array_equal(calibrated.labels_, plain.labels_)
    assert (
        score_on_gold(calibrated.labels_, calibrated.confidence_, gold).ece
        <= (CROWD_KIT_BEST_BLIND_ECE[name])
    )


def test_without_gold_the_default_halves_dawid_skenes_over_confidence_on_dogs() -> None:
    votes, gold = real_crowd("dog")
    plain = DawidSkene().fit(votes)
    calibrated = CalibratedDawidSkene().fit(votes)
    before = score_on_gold(plain.labels_, plain.confidence_, gold)
    after = score_on_gold(calibrated.labels_, calibrated.confidence_, gold)
    assert after.accuracy == before.accuracy
    assert after.ece < before.ece / 2
    # Still short of Wawa's 0.0731 here (0.0747): see the README.
    assert after.ece < CROWD_KIT_BEST_BLIND_ECE["dog"] + 0.005


def test_every_real_set_is_read_in_full() -> None:
    sizes = {name: real_crowd(name)[0].size for name in CROWD_KIT_BEST}
    assert sizes == {"rte": 8000, "temp": 4620, "product": 24945, "dog": 8070}
    assert all(np.all(real_crowd(name)[1] >= 0) for name in CROWD_KIT_BEST)
