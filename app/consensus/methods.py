"""The aggregation methods a job can choose, by stable name, and the rule for falling back from
Dawid-Skene to the weighted vote while annotators have answered too little.

Names are stored in job settings and on every consensus row: never rename one.
"""

from __future__ import annotations

from enum import StrEnum

from app.consensus.calibrated_dawid_skene import CalibratedDawidSkene
from app.consensus.dawid_skene import DawidSkene
from app.consensus.estimator import CategoricalEstimator
from app.consensus.majority_vote import MajorityVote
from app.consensus.votes import FloatArray, Votes
from app.consensus.weighted_vote import WeightedVote


class Method(StrEnum):
    majority_vote = "majority_vote"
    weighted_vote = "weighted_vote"
    dawid_skene = "dawid_skene"
    calibrated_dawid_skene = "calibrated_dawid_skene"


# Chosen by bench/aggregation.py (README, "Consensus: aggregation"): Dawid-Skene's labels, the most
# accurate of ours on the real crowd sets, with a confidence calibrated on the job's gold.
DEFAULT_METHOD = Method.calibrated_dawid_skene

CONFUSION_METHODS = frozenset((Method.dawid_skene, Method.calibrated_dawid_skene))

# Dawid-Skene estimates K×K numbers per annotator, the weighted vote one. Measured on synthetic
# crowds (bench/aggregation.py, "fallback"): with 4 labels the weighted vote was 2 points more
# accurate while the typical vote came from an annotator with ~30 answers, and Dawid-Skene 1-2
# points more accurate from ~60; with 2 labels the two were level from ~30 and the weighted vote
# ahead below. Hence: at least max(MIN_ANSWERS_FOR_CONFUSIONS, 2·K²) answers (two per cell of
# the matrix) for the annotator behind the median vote.
MIN_ANSWERS_FOR_CONFUSIONS = 20


def answers_needed(n_labels: int) -> int:
    """Answers an annotator needs on a question before their confusion matrix is trusted."""
    return max(MIN_ANSWERS_FOR_CONFUSIONS, 2 * n_labels * n_labels)


def method_for(method: Method, votes: Votes) -> Method:
    """The method a question is fitted with: a Dawid-Skene method falls back to the weighted
    vote unless more than half of the question's votes come from annotators with at least
    `answers_needed(n_labels)` votes on it."""
    if method not in CONFUSION_METHODS:
        return method
    if votes.size == 0:
        return Method.weighted_vote
    per_annotator = votes.answers_per_annotator()
    experienced = per_annotator[votes.annotators] >= answers_needed(votes.n_labels)
    return method if float(experienced.mean()) > 0.5 else Method.weighted_vote


def estimator_for(method: Method, prior_skills: FloatArray, seed: int) -> CategoricalEstimator:
    """A fresh estimator for `method`; `prior_skills` (NaN: unknown) seed the weighted vote."""
    match method:
        case Method.majority_vote:
            return MajorityVote(seed=seed)
        case Method.weighted_vote:
            return WeightedVote(skills=prior_skills, seed=seed)
        case Method.dawid_skene:
            return DawidSkene(seed=seed)
        case Method.calibrated_dawid_skene:
            return CalibratedDawidSkene(seed=seed)
