"""What every categorical estimator is: configured in its constructor, fitted with
`fit(votes, gold)` over a whole job, its results left as attributes (crowd-kit's shape, which
STYLE.md asks for: per-item functions cannot express Dawid-Skene).

Fitted attributes, for `n_items` items, `n_labels` labels and `n_annotators` annotators:

- `probas_` (n_items, n_labels): the probability of each label being the item's true one. A row
  of zeros means no evidence (an item without votes and without gold).
- `labels_` (n_items,): the most likely label's index (ties broken by `votes.most_likely`), or
  `NO_LABEL` for an item without evidence. Gold items carry their gold label.
- `confidence_` (n_items,): `probas_` at `labels_`, 0 without evidence.
- `skills_` (n_annotators,): each annotator's estimated probability of answering correctly.
"""

from __future__ import annotations

from typing import Protocol, Self

import numpy as np

from app.consensus.votes import NO_LABEL, FloatArray, IntArray, Votes, most_likely

# Skills are kept off 0 and 1, where one vote would outweigh any number of others.
SKILL_BOUNDS = (0.01, 0.99)


class CategoricalEstimator(Protocol):
    probas_: FloatArray
    labels_: IntArray
    confidence_: FloatArray
    skills_: FloatArray

    def fit(self, votes: Votes, gold: IntArray | None = None) -> Self:
        """Fit on all of a question's votes. `gold` (n_items,) holds known answers (label
        indices, `NO_LABEL` where unknown): estimators that can use them clamp those items to
        their gold label while fitting."""
        ...


def check_gold(votes: Votes, gold: IntArray | None) -> IntArray:
    """`gold` as an (n_items,) array of label indices or NO_LABEL (all NO_LABEL when None)."""
    if gold is None:
        return np.full(votes.n_items, NO_LABEL, dtype=np.int64)
    gold = np.asarray(gold, dtype=np.int64)
    if gold.shape != (votes.n_items,):
        raise ValueError("gold needs one entry per item (NO_LABEL where unknown)")
    known = gold != NO_LABEL
    if np.any(gold[known] < 0) or np.any(gold[known] >= votes.n_labels):
        raise ValueError("gold labels must be label indices or NO_LABEL")
    return gold


def clamp_gold(probas: FloatArray, gold: IntArray) -> None:
    """Overwrite the rows of gold items with their known label, in place."""
    known = np.flatnonzero(gold != NO_LABEL)
    probas[known] = 0.0
    probas[known, gold[known]] = 1.0


def decide(probas: FloatArray, votes: Votes, seed: int) -> tuple[IntArray, FloatArray]:
    """(labels, confidence) from per-item label probabilities; see the module docstring."""
    labels = most_likely(probas, votes.item_keys, seed)
    confidence = np.zeros(votes.n_items)
    decided = labels != NO_LABEL
    confidence[decided] = probas[np.flatnonzero(decided), labels[decided]]
    return labels, confidence


def agreement_with(
    labels: IntArray, votes: Votes, prior_mean: float = 0.5, prior_strength: float = 2.0
) -> FloatArray:
    """Each annotator's share of votes equal to `labels` (items without a label ignored),
    smoothed towards `prior_mean` by `prior_strength` pseudo-votes (a Beta prior) so that three
    lucky answers do not read as a perfect annotator."""
    decided = labels[votes.items] != NO_LABEL
    hits = (labels[votes.items] == votes.labels) & decided
    agree = np.bincount(votes.annotators, weights=hits, minlength=votes.n_annotators)
    total = np.bincount(votes.annotators, weights=decided, minlength=votes.n_annotators)
    result: FloatArray = (agree + prior_mean * prior_strength) / (total + prior_strength)
    return result


def softmax_rows(log_scores: FloatArray) -> FloatArray:
    """Per row, exp(log_scores) normalised to sum to 1 (shifted first, so nothing overflows)."""
    shifted = log_scores - log_scores.max(axis=1, keepdims=True)
    probas: FloatArray = np.exp(shifted)
    probas /= probas.sum(axis=1, keepdims=True)
    return probas
