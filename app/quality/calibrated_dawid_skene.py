"""Dawid-Skene with its confidence calibrated on the job's gold items by temperature scaling.

Dawid-Skene's posteriors assume annotators err independently given the truth. Real crowds do
not: hard items fool several annotators the same way, so ten votes carry less evidence than the
model believes and its confidence runs high: expected calibration error 0.15 on the 4-class dog
set, where the model says 0.99 on items it gets right 85% of the time. Measured on the real crowd
sets (../shared/data/crowd), even confusion matrices estimated from gold itself leave the
posterior over-confident (ECE 0.04-0.10), so no better estimate of the matrices cures it, and no
gold-free criterion we tried (a held-out vote's likelihood, the intra-item correlation of errors,
a mixture of easy and hard items) chose the right softening.

What does cure it is one scalar fitted on gold: the log posterior is divided by a temperature T
(Guo et al., ICML 2017) chosen to fit the gold labels under the tempered, unclamped posterior (by
Brier score, never below 1: see `calibration`). T changes no label, only how sure each one is.
Gold items are clamped while the matrices are fitted, so each gold item's own answers taught them
its truth; scored with those matrices, gold items would look easier than the others and T would
come out too small. So each gold item is scored with its own contribution taken out of the
expected counts and the prior (leave-one-out, one M-step deep). The benchmark measures the result
on items outside the gold. With fewer than `min_gold` gold items the result is plain Dawid-Skene.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from app.quality.calibration import fit_temperature, tempered
from app.quality.dawid_skene import DawidSkene
from app.quality.estimator import check_gold, clamp_gold, decide
from app.quality.votes import NO_LABEL, FloatArray, IntArray, Votes

# Below this many gold items a fitted temperature is mostly noise (measured: with ~50 gold items
# the fitted T of the 4-class set still ranges 3-7 between random draws).
MIN_GOLD = 30


class CalibratedDawidSkene:
    """`DawidSkene` (same parameters) whose `probas_` are tempered by `temperature_`, fitted on
    the gold items with votes when there are at least `min_gold` of them (else 1.0). The fitted
    `DawidSkene` is kept as `model_`; `calibrated_on_` counts the gold items used."""

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-7,
        smoothing: float = 0.01,
        prior_smoothing: float = 1.0,
        min_gold: int = MIN_GOLD,
        seed: int = 0,
    ) -> None:
        self.model = DawidSkene(n_iter, tol, smoothing, prior_smoothing, seed)
        self.min_gold = min_gold
        self.seed = seed

    def fit(self, votes: Votes, gold: IntArray | None = None) -> Self:
        gold = check_gold(votes, gold)
        model = self.model.fit(votes, gold)
        voted = np.bincount(votes.items, minlength=votes.n_items) > 0
        calibration_items = np.flatnonzero(voted & (gold != NO_LABEL))
        self.calibrated_on_ = int(calibration_items.size)
        self.temperature_ = 1.0
        if calibration_items.size >= self.min_gold:
            self.temperature_ = fit_temperature(
                _left_out(model, votes, gold, calibration_items), gold[calibration_items]
            )
        probas = tempered(model.log_joint_, self.temperature_)
        probas[~voted] = model.probas_[~voted]  # gold without votes: clamped; others: zero
        clamp_gold(probas, gold)
        self.model_ = model
        self.probas_: FloatArray = probas
        self.labels_: IntArray
        self.confidence_: FloatArray
        self.labels_, self.confidence_ = decide(probas, votes, self.seed)
        self.skills_: FloatArray = model.skills_
        return self


def _left_out(model: DawidSkene, votes: Votes, gold: IntArray, items: IntArray) -> FloatArray:
    """`log_joint_` of the gold `items`, each without its own votes in the matrices and prior.

    A clamped gold item added exactly 1 to cell [truth, answer] of each of its annotators'
    expected counts, and 1 to its label's prior mass; only the truth's row changes, so only the
    log-likelihood of the gold label moves.
    """
    k = votes.n_labels
    log_joint = model.log_joint_[items].copy()
    position = np.full(votes.n_items, -1)
    position[items] = np.arange(items.size)
    on_gold = np.flatnonzero(position[votes.items] >= 0)
    a, truth, answer = votes.annotators[on_gold], gold[votes.items[on_gold]], votes.labels[on_gold]
    counts = model.expected_counts_[a, truth]  # (votes, answer) rows of the truth
    alpha = model.smoothing
    kept = np.log((counts[np.arange(a.size), answer] - 1 + alpha) / (counts.sum(1) - 1 + k * alpha))
    change = kept - np.log(model.confusions_[a, truth, answer])
    rows = position[votes.items[on_gold]]
    np.add.at(log_joint, (rows, truth), change)
    mass, beta = model.label_mass_, model.prior_smoothing
    truth_of_item = gold[items]
    log_joint[np.arange(items.size), truth_of_item] += np.log(
        (mass[truth_of_item] - 1 + beta) / (mass.sum() - 1 + k * beta)
    ) - np.log(model.priors_[truth_of_item])
    return log_joint
