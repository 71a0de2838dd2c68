"""Synthetic crowds with a known truth, for tests, benchmarks and trying methods out.

Annotators come in three kinds, as in the crowdsourcing literature's simulations (e.g. Raykar
et al., "Learning from crowds", JMLR 2010; Karger, Oh & Shah, "Budget-optimal task allocation
for reliable crowdsourcing systems", Operations Research 2014):

- workers, with an accuracy drawn from `accuracy` and errors that are not uniform: each true
  label has its own favourite wrong answers (a Dirichlet draw), which is what a confusion matrix
  can learn and a single skill cannot;
- spammers, who answer uniformly at random whatever the item;
- adversaries, who mostly give one fixed wrong label for each true label (a permutation), so
  their answers carry information only for a model that learns their confusion matrix.

How much each annotator works is heavy-tailed (Zipf-like), as on real platforms; every item gets
`answers_per_item` distinct annotators. A share of `hard_items` fools everyone the same way: on
such an item every annotator gives the truth with probability `hard_accuracy` (0.4: most answers
wrong) and one decoy label otherwise. Those correlated errors are what makes Dawid-Skene
over-confident on real crowds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.consensus.votes import FloatArray, IntArray, Votes


@dataclass(frozen=True)
class SyntheticCrowd:
    votes: Votes
    truth: IntArray  # (n_items,) true label of each item
    confusions: FloatArray  # (n_annotators, n_labels, n_labels), rows truth, columns answer
    kinds: list[str]  # per annotator: "worker", "spammer" or "adversary"


def synthetic_crowd(
    n_items: int,
    n_annotators: int,
    n_labels: int,
    answers_per_item: int,
    *,
    spammers: float = 0.1,
    adversaries: float = 0.05,
    accuracy: tuple[float, float] = (0.55, 0.95),
    activity_skew: float = 0.8,
    hard_items: float = 0.0,
    hard_accuracy: float = 0.4,
    seed: int = 0,
) -> SyntheticCrowd:
    """A crowd of `n_annotators` answering `n_items` items `answers_per_item` times each;
    `spammers` and `adversaries` are shares of the annotators. Deterministic for a seed."""
    if answers_per_item > n_annotators:
        raise ValueError("answers_per_item cannot exceed the number of annotators")
    rng = np.random.default_rng(seed)
    kinds = rng.choice(
        ["worker", "spammer", "adversary"],
        size=n_annotators,
        p=[1 - spammers - adversaries, spammers, adversaries],
    ).tolist()
    confusions = np.empty((n_annotators, n_labels, n_labels))
    permutation = np.roll(np.arange(n_labels), 1)
    for a, kind in enumerate(kinds):
        if kind == "spammer":
            confusions[a] = 1.0 / n_labels
        elif kind == "adversary" and n_labels > 1:
            confusions[a] = 0.1 / max(n_labels - 1, 1)
            confusions[a, np.arange(n_labels), permutation] = 0.9
            confusions[a] /= confusions[a].sum(axis=1, keepdims=True)
        else:
            p = rng.uniform(*accuracy)
            for k in range(n_labels):
                wrong = rng.dirichlet(np.full(n_labels - 1, 0.7)) if n_labels > 1 else np.empty(0)
                confusions[a, k] = np.insert(wrong * (1 - p), k, p)
    truth = rng.choice(n_labels, size=n_items, p=rng.dirichlet(np.full(n_labels, 5.0)))
    annotators = _assign(rng, n_items, n_annotators, answers_per_item, activity_skew)
    items = np.repeat(np.arange(n_items), answers_per_item)
    annotators = annotators.ravel()
    # Draw each answer from its annotator's row for the item's true label.
    cumulative = np.cumsum(confusions[annotators, truth[items]], axis=1)
    draws = rng.random(items.size)
    labels = (cumulative < draws[:, None]).sum(axis=1).clip(max=n_labels - 1)
    if hard_items > 0 and n_labels > 1:
        hard = rng.random(n_items) < hard_items
        decoy = (truth + rng.integers(1, n_labels, size=n_items)) % n_labels
        fooled = hard[items] & (rng.random(items.size) >= hard_accuracy)
        labels = np.where(hard[items], np.where(fooled, decoy[items], truth[items]), labels)
    votes = Votes(items, annotators, labels, n_items, n_annotators, n_labels)
    return SyntheticCrowd(votes, truth.astype(np.int64), confusions, kinds)


def _assign(
    rng: np.random.Generator, n_items: int, n_annotators: int, per_item: int, skew: float
) -> IntArray:
    """(n_items, per_item) distinct annotators per item, drawn by Zipf-like activity."""
    activity = 1.0 / np.arange(1, n_annotators + 1) ** skew
    activity = rng.permutation(activity / activity.sum())
    chosen = rng.choice(n_annotators, size=(n_items, per_item), p=activity)
    while True:
        ordered = np.sort(chosen, axis=1)
        repeated = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if repeated.size == 0:
            return chosen.astype(np.int64)
        chosen[repeated] = rng.choice(n_annotators, size=(repeated.size, per_item), p=activity)
