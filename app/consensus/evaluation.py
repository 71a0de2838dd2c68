"""Judging an aggregation on items whose answer is known, without letting it see those answers.

Gold items are clamped when an estimator is fitted, so scoring the consensus on the gold it was
given would always say 100%. Cross-fitting splits the gold items into folds and predicts each
fold with the gold of other folds given: `known="others"` gives it all the other folds (what
`tessera aggregate --gold` reports: how good the consensus is on items like the gold ones), and
`known="next"` gives it one other fold only (a job whose gold is 1/folds of its items, the
setting of bench/aggregation.py). Every gold item is predicted exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from app.consensus.calibration import expected_calibration_error
from app.consensus.estimator import CategoricalEstimator
from app.consensus.votes import NO_LABEL, FloatArray, IntArray, Votes

Fit = Callable[[Votes, IntArray], CategoricalEstimator]


@dataclass(frozen=True)
class GoldScore:
    """Accuracy and expected calibration error over `n` gold items with a prediction."""

    accuracy: float
    ece: float
    n: int


def score_on_gold(labels: IntArray, confidence: FloatArray, gold: IntArray) -> GoldScore:
    """Accuracy and ECE of `labels`/`confidence` on the items with a gold label; an item without
    a predicted label counts as wrong, at confidence 0."""
    known = gold != NO_LABEL
    correct = labels[known] == gold[known]
    n = int(known.sum())
    if n == 0:
        return GoldScore(float("nan"), float("nan"), 0)
    return GoldScore(
        float(correct.mean()), expected_calibration_error(confidence[known], correct), n
    )


def gold_folds(gold: IntArray, folds: int, seed: int = 0) -> IntArray:
    """A fold in range(folds) for each gold item (shuffled, sizes differing by at most one),
    -1 for the others."""
    fold = np.full(gold.size, -1, dtype=np.int64)
    known = np.flatnonzero(gold != NO_LABEL)
    order = np.random.default_rng(seed).permutation(known.size)
    fold[known[order]] = np.arange(known.size) % folds
    return fold


def cross_fitted(
    votes: Votes,
    gold: IntArray,
    fit: Fit,
    *,
    folds: int = 5,
    known: Literal["others", "next"] = "others",
    seed: int = 0,
) -> tuple[IntArray, FloatArray]:
    """(labels, confidence) for every gold item, each predicted by `fit(votes, given_gold)`
    with its own fold's gold withheld (see the module docstring); NO_LABEL and 0 elsewhere."""
    if folds < 2:
        raise ValueError("cross-fitting needs at least two folds")
    fold = gold_folds(gold, folds, seed)
    labels = np.full(votes.n_items, NO_LABEL, dtype=np.int64)
    confidence = np.zeros(votes.n_items)
    for f in range(folds):
        target = fold == f
        if not target.any():
            continue
        given_folds = fold != f if known == "others" else fold == (f + 1) % folds
        given = np.where(given_folds & (fold >= 0), gold, NO_LABEL)
        estimator = fit(votes, given)
        labels[target] = estimator.labels_[target]
        confidence[target] = estimator.confidence_[target]
    return labels, confidence


def annotator_gold_accuracy(votes: Votes, gold: IntArray) -> tuple[FloatArray, IntArray]:
    """(accuracy on gold, number of gold answers) per annotator; NaN accuracy without any."""
    graded = gold[votes.items] != NO_LABEL
    right = graded & (gold[votes.items] == votes.labels)
    hits = np.bincount(votes.annotators, weights=right, minlength=votes.n_annotators)
    total = np.bincount(votes.annotators, weights=graded, minlength=votes.n_annotators)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy: FloatArray = hits / total
    return accuracy, total.astype(np.int64)
