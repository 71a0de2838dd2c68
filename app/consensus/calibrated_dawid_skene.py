"""Dawid-Skene with its confidence calibrated: by a temperature fitted on the job's gold items
where there are enough of them, else by mixing in the vote shares, with the mixture weight fitted
on held-out votes.

Dawid-Skene's posteriors assume annotators err independently given the truth. Real crowds do
not: hard items fool several annotators the same way, so ten votes carry less evidence than the
model believes and its confidence runs high: expected calibration error 0.15 on the 4-class dog
set, where the model says 0.99 on items it gets right 85% of the time. Measured on the real crowd
sets (../shared/data/crowd), even confusion matrices estimated from gold itself leave the
posterior over-confident (ECE 0.04-0.10), so no better estimate of the matrices cures it; nor did
Dirichlet priors on the confusion rows (README, "Aggregation benchmark").

With gold: one scalar fitted on it. The log posterior is divided by a temperature T (Guo et al.,
ICML 2017) chosen to fit the gold labels under the tempered, unclamped posterior (by Brier score,
never below 1: see `calibration`). Gold items are clamped while the matrices are fitted, so each
gold item's own answers taught them its truth; scored with those matrices, gold items would look
easier than the others and T would come out too small. So each gold item is scored with its own
contribution taken out of the expected counts and the prior (leave-one-out, one M-step deep).

Without enough gold (fewer than `min_gold` gold items, the common case): the votes are the only
outcomes there are to check the model against. Left out one at a time, each vote has a
probability under the model fitted without its item (one M-step deep, as above), given the item's
other votes: P(vote | others) = Σ_t P(t | others) · π_a[t, vote], which is
P(all the item's votes) / P(the others). Where hard items fool annotators together, that
prediction is over-confident in the same way as the posterior, and the item's other votes'
shares, pushed through the same π_a, predict the left-out vote better. The posterior reported is
the mixture (1 − w) · posterior + w · vote shares (a linear pool of Dawid-Skene and majority
vote, whose vote shares are well calibrated on noisy crowds), with w chosen by the left-out votes'
log-likelihood: stacking (Yao et al. 2018; `calibration.fit_mixture_weight`). On a clean crowd
the shares predict no better and w stays near 0. The labels stay Dawid-Skene's (the mixture can
rank a near-tie differently; the label does not move, its confidence is the mixture's
probability of it). Measured blind on the real sets (README, "Gold-free calibration"): ECE at or
below crowd-kit's best on rte, temp and product, 0.0747 against Wawa's 0.0731 on dog (plain
Dawid-Skene: 0.1518); a temperature, or one growing with the item's votes, chosen by the same
criterion left dog at 0.0945 and 0.0813. The check cannot see an item that fools all its
annotators alike, so it under-corrects where that is common (dog: w 0.31, gold would pick
about 0.57), and on a very clean crowd it softens a little (worst measured: 0.0015 to 0.034).
"""

from __future__ import annotations

from typing import Self

import numpy as np

from app.consensus.calibration import fit_mixture_weight, fit_temperature, tempered
from app.consensus.dawid_skene import DawidSkene
from app.consensus.estimator import check_gold, clamp_gold, decide
from app.consensus.votes import NO_LABEL, FloatArray, IntArray, Votes

# The temperature of the gold-free posterior, before the vote shares are mixed in. Left out one
# at a time (bench/aggregation.py, README "Leave one dataset out"), the other eight real crowds
# chose T = 2 for 7 of the 9 (by mean Brier score), but on product it doubles the ECE (0.027 to
# 0.054, past crowd-kit's 0.029) and on synthetic crowds that follow the model it triples it: the
# stacked weight of the vote shares alone calibrates, at T = 1.
GOLD_FREE_TEMPERATURE = 1.0

# Below this many gold items a fitted temperature is mostly noise (measured: with ~50 gold items
# the fitted T of the 4-class set still ranges 3-7 between random draws).
MIN_GOLD = 30


class CalibratedDawidSkene:
    """`DawidSkene` (same parameters) calibrated: with at least `min_gold` gold items with votes,
    its `probas_` are tempered by `temperature_` fitted on them (`share_weight_` 0); with fewer,
    they are tempered by `temperature` (GOLD_FREE_TEMPERATURE) and mixed with the vote
    shares by `share_weight_` fitted on left-out votes (or `share_weight`, when given). Labels
    are Dawid-Skene's. The fitted `DawidSkene` is kept as `model_`; `calibrated_on_` counts the
    gold items used."""

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-7,
        smoothing: float = 0.01,
        prior_smoothing: float = 1.0,
        min_gold: int = MIN_GOLD,
        seed: int = 0,
        pooling: float = 0.0,
        share_weight: float | None = None,
        temperature: float = GOLD_FREE_TEMPERATURE,
    ) -> None:
        self.model = DawidSkene(n_iter, tol, smoothing, prior_smoothing, seed, pooling)
        self.min_gold = min_gold
        self.seed = seed
        self.share_weight = share_weight
        self.temperature = temperature

    def fit(self, votes: Votes, gold: IntArray | None = None) -> Self:
        gold = check_gold(votes, gold)
        model = self.model.fit(votes, gold)
        voted = np.bincount(votes.items, minlength=votes.n_items) > 0
        calibration_items = np.flatnonzero(voted & (gold != NO_LABEL))
        self.calibrated_on_ = int(calibration_items.size)
        self.temperature_ = 1.0
        self.share_weight_ = 0.0
        if calibration_items.size >= self.min_gold:
            self.temperature_ = fit_temperature(
                _left_out(model, votes, gold, calibration_items), gold[calibration_items]
            )
        elif self.share_weight is None:
            self.share_weight_ = fit_mixture_weight(*_held_out_votes(model, votes, gold))
            self.temperature_ = self.temperature
        else:
            self.share_weight_ = self.share_weight
            self.temperature_ = self.temperature
        # What the labels are chosen by: Dawid-Skene's posterior (tempered: the same ranking).
        ranking = tempered(model.log_joint_, self.temperature_)
        ranking[~voted] = model.probas_[~voted]  # gold without votes: clamped; others: zero
        clamp_gold(ranking, gold)
        self.labels_: IntArray
        self.labels_, _ = decide(ranking, votes, self.seed)
        probas = ranking
        if self.share_weight_ > 0.0:
            counts = votes.vote_counts()[voted]
            shares = counts / counts.sum(axis=1, keepdims=True)
            probas = ranking.copy()
            probas[voted] = (1.0 - self.share_weight_) * ranking[voted] + (
                self.share_weight_ * shares
            )
            clamp_gold(probas, gold)
        self.model_ = model
        self.probas_: FloatArray = probas
        self.confidence_: FloatArray = np.zeros(votes.n_items)
        decided = np.flatnonzero(self.labels_ != NO_LABEL)
        self.confidence_[decided] = probas[decided, self.labels_[decided]]
        self.skills_: FloatArray = model.skills_
        return self


# Votes per slice in `_held_out_votes`: its per-vote (votes × labels) temporaries stay a few MB
# (measured: all at once, the 1,000,000-vote benchmark's peak memory doubled).
CHUNK = 1 << 16


def _held_out_votes(
    model: DawidSkene, votes: Votes, gold: IntArray
) -> tuple[FloatArray, FloatArray]:
    """For each vote on an item that is not gold and has other votes: the probability of the vote
    given the item's other votes, with the model fitted without the item, (1) under the model's
    posterior and (2) with the other votes' shares in place of the posterior.

    The item's posterior put probas_[item, t] into cell [t, answer] of each of its annotators'
    expected counts (and into the prior's mass of t): taking it out gives the matrices and prior
    without the item. With J the item's joint log-probability of all its votes under those, and
    c_v[t] = log π_a[t, answer] the vote's own term, (1) is exp(logsumexp(J) − logsumexp(J − c_v)).
    """
    k = votes.n_labels
    per_item = np.bincount(votes.items, minlength=votes.n_items)
    on = np.flatnonzero((gold[votes.items] == NO_LABEL) & (per_item[votes.items] >= 2))
    items, annotators, answers = votes.items[on], votes.annotators[on], votes.labels[on]
    beta, pseudo = model.prior_smoothing, model.pseudo_counts_
    row_totals, pseudo_rows = model.expected_counts_.sum(axis=2), pseudo.sum(axis=2)
    own = np.empty((on.size, k))
    for part in _chunks(on.size):
        posterior = model.probas_[items[part]]
        a, answer = annotators[part], answers[part]
        cell = np.maximum(model.expected_counts_[a, :, answer] - posterior, 0.0)
        row = np.maximum(row_totals[a] - posterior, 0.0)
        own[part] = np.log(cell + pseudo[a, :, answer]) - np.log(row + pseudo_rows[a])
    mass = np.maximum(model.label_mass_ - model.probas_, 0.0) + beta
    joint = np.log(mass / mass.sum(axis=1, keepdims=True))
    for t in range(k):
        joint[:, t] += np.bincount(items, weights=own[:, t], minlength=votes.n_items)
    counts = votes.vote_counts()
    weight = np.ones(on.size) if votes.weights is None else votes.weights[on]
    given_posterior, given_shares = np.empty(on.size), np.empty(on.size)
    for part in _chunks(on.size):
        joint_of, own_of = joint[items[part]], own[part]
        given_posterior[part] = np.exp(_logsumexp(joint_of) - _logsumexp(joint_of - own_of))
        others = counts[items[part]]
        others[np.arange(others.shape[0]), answers[part]] -= weight[part]
        others /= others.sum(axis=1, keepdims=True)
        given_shares[part] = np.einsum("vt,vt->v", others, np.exp(own_of))
    return given_posterior, given_shares


def _chunks(n: int) -> list[slice]:
    return [slice(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK)]


def _logsumexp(x: FloatArray) -> FloatArray:
    top = x.max(axis=1)
    result: FloatArray = top + np.log(np.exp(x - top[:, None]).sum(axis=1))
    return result


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
    pseudo = model.pseudo_counts_
    kept = np.log(
        (counts[np.arange(a.size), answer] - 1 + pseudo[a, truth, answer])
        / (counts.sum(1) - 1 + pseudo[a, truth].sum(axis=1))
    )
    change = kept - np.log(model.confusions_[a, truth, answer])
    rows = position[votes.items[on_gold]]
    np.add.at(log_joint, (rows, truth), change)
    mass, beta = model.label_mass_, model.prior_smoothing
    truth_of_item = gold[items]
    log_joint[np.arange(items.size), truth_of_item] += np.log(
        (mass[truth_of_item] - 1 + beta) / (mass.sum() - 1 + k * beta)
    ) - np.log(model.priors_[truth_of_item])
    return log_joint
