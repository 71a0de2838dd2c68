"""Dawid-Skene: EM over a confusion matrix per annotator and the labels' prior.

Dawid & Skene, "Maximum likelihood estimation of observer error-rates using the EM algorithm",
Applied Statistics 28(1), 1979. Each annotator a has a confusion matrix π_a[k, l] (probability
of answering l when the truth is k); the votes of an item are independent given its true label.
EM alternates the posterior over each item's true label (E-step) with the matrices and prior
that maximise the expected likelihood (M-step), starting from majority-vote shares as the paper
does. A symmetric Dirichlet(α) prior on each confusion row keeps rows of annotators who never met
a class away from 0 and 1 (an annotator seen once must not get an infinite weight). Gold items
are clamped to their known label in every E-step, so they teach the matrices what each annotator
does on a known truth.

Both steps are one sparse-dense product each. With C the (items × annotator·label) matrix of vote
counts, the E-step's log-likelihoods are C @ log π (rows: annotator·label, columns: true label),
and the M-step's expected counts are Cᵀ @ posterior. Measured on 1,000,000 synthetic votes (200k
items, 2,000 annotators, 4 labels) in bench/aggregation.py: see the README's table; crowd-kit's
pandas implementation (joins and group-bys per step) took 55.9 s and ~700 MB there.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from app.consensus.estimator import SKILL_BOUNDS, check_gold, clamp_gold, decide
from app.consensus.votes import NO_LABEL, BoolArray, FloatArray, IntArray, Votes

# The skill an annotator's one-coin pooling prior starts from (weighted_vote.DEFAULT_SKILL).
POOLING_SKILL = 0.7


def count_matrix(votes: Votes) -> Any:
    """(n_items, n_annotators·n_labels) CSR matrix of vote counts (`Votes.weights`: repeated
    answers of one annotator to one item share one vote)."""
    columns = votes.annotators * votes.n_labels + votes.labels
    weights = votes.weights if votes.weights is not None else np.ones(votes.size)
    return sp.csr_matrix(
        (weights, (votes.items, columns)),
        shape=(votes.n_items, votes.n_annotators * votes.n_labels),
    )


class DawidSkene:
    """Dawid-Skene by EM.

    Stops after `n_iter` iterations or when an iteration changes the log-likelihood of the votes
    by at most `tol` of its size. `smoothing`
    is the Dirichlet α added to every confusion count; `prior_smoothing` the same for the label
    prior. Fitted, besides the common attributes (`probas_`, `labels_`, `confidence_`,
    `skills_`): `confusions_` (n_annotators, n_labels, n_labels) with rows summing to 1,
    `priors_` (n_labels,), `log_joint_` (n_items, n_labels) the unclamped log prior plus
    log-likelihood of each item's votes, `expected_counts_` (the matrices before smoothing and
    normalising) and `label_mass_` (the prior's), `log_likelihood_` and `n_iter_`. `skills_` is the
    probability the annotator answers correctly: their expected share of right answers under the
    posterior, smoothed (`posterior_skills`).
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-7,
        smoothing: float = 0.01,
        prior_smoothing: float = 1.0,
        seed: int = 0,
        pooling: float = 0.0,
    ) -> None:
        if smoothing <= 0 or prior_smoothing < 0 or pooling < 0:
            raise ValueError("smoothing must be positive, prior_smoothing and pooling not negative")
        self.n_iter = n_iter
        self.tol = tol
        self.smoothing = smoothing
        self.prior_smoothing = prior_smoothing
        self.seed = seed
        self.pooling = pooling

    def fit(self, votes: Votes, gold: IntArray | None = None) -> Self:
        gold = check_gold(votes, gold)
        counts = count_matrix(votes)
        counts_t = counts.T.tocsr()
        voted = np.asarray(counts.sum(axis=1)).ravel() > 0
        evidence = voted | (gold != NO_LABEL)

        totals = votes.vote_counts()
        shares = totals.sum(axis=1, keepdims=True)
        probas = np.divide(totals, shares, out=np.zeros_like(totals), where=voted[:, None])
        clamp_gold(probas, gold)
        self.n_iter_ = 0
        previous = -np.inf
        for _ in range(max(self.n_iter, 1)):
            self._m_step(votes, counts_t, probas)
            probas, log_likelihood = self._e_step(counts, voted, evidence, gold)
            self.n_iter_ += 1
            if abs(log_likelihood - previous) <= self.tol * abs(log_likelihood):
                break
            previous = log_likelihood
        # The parameters of the final posteriors, and the posteriors they give: what
        # `log_joint_` (and so the calibrated variant at temperature 1) reproduces exactly.
        self._m_step(votes, counts_t, probas)
        probas, self.log_likelihood_ = self._e_step(counts, voted, evidence, gold)
        self.probas_: FloatArray = probas
        self.labels_: IntArray
        self.confidence_: FloatArray
        self.labels_, self.confidence_ = decide(probas, votes, self.seed)
        self.skills_: FloatArray = posterior_skills(votes, probas)
        return self

    def _m_step(self, votes: Votes, counts_t: Any, probas: FloatArray) -> None:
        k = votes.n_labels
        # expected[a·L + l, k]: expected number of times annotator a answered l on truth k.
        expected = np.asarray(counts_t @ probas).reshape(votes.n_annotators, k, k)
        self.expected_counts_: FloatArray = expected.transpose(0, 2, 1)  # [a, truth, answer]
        self.pseudo_counts_: FloatArray = self._pseudo_counts(self.expected_counts_)
        confusions = self.expected_counts_ + self.pseudo_counts_
        confusions /= confusions.sum(axis=2, keepdims=True)
        self.confusions_: FloatArray = confusions
        self.label_mass_: FloatArray = probas.sum(axis=0)
        mass = self.label_mass_ + self.prior_smoothing
        self.priors_: FloatArray = mass / mass.sum()

    def _pseudo_counts(self, expected: FloatArray) -> FloatArray:
        """The Dirichlet prior of each confusion row: `smoothing` in every cell, plus `pooling`
        pseudo-answers spread as the annotator's own one-coin matrix (their overall share of
        right answers p_a on the diagonal, (1 − p_a)/(K − 1) elsewhere, p_a smoothed towards
        DEFAULT_SKILL by two answers)."""
        n_annotators, k, _ = expected.shape
        if self.pooling == 0 or k == 1:
            return np.full(expected.shape, self.smoothing)
        right = np.einsum("akk->a", expected)
        skill = (right + 2 * POOLING_SKILL) / (expected.sum(axis=(1, 2)) + 2)
        one_coin = np.empty((n_annotators, k, k))
        one_coin[:] = ((1 - skill) / (k - 1))[:, None, None]
        diagonal = np.arange(k)
        one_coin[:, diagonal, diagonal] = skill[:, None]
        result: FloatArray = self.pooling * one_coin + self.smoothing
        return result

    def _e_step(
        self, counts: Any, voted: BoolArray, evidence: BoolArray, gold: IntArray
    ) -> tuple[FloatArray, float]:
        """(posteriors, log-likelihood of the votes); sets `log_joint_`."""
        self.log_joint_: FloatArray = self._log_joint(counts)
        top = self.log_joint_.max(axis=1, keepdims=True)
        scaled = np.exp(self.log_joint_ - top)
        total = scaled.sum(axis=1, keepdims=True)
        log_likelihood = float(np.sum((top + np.log(total))[voted]))
        probas: FloatArray = scaled / total
        probas[~evidence] = 0.0
        clamp_gold(probas, gold)
        return probas, log_likelihood

    def _log_joint(self, counts: Any) -> FloatArray:
        n_annotators, k, _ = self.confusions_.shape
        # Rows annotator·answer, columns truth: the layout of the count matrix's columns.
        table = np.log(self.confusions_).transpose(0, 2, 1).reshape(n_annotators * k, k)
        result: FloatArray = np.asarray(counts @ table) + np.log(self.priors_)
        return result


# Pseudo-answers at the default skill in `posterior_skills`: a handful of answers that happen to
# agree must not rank an annotator above one proven over hundreds.
SKILL_PRIOR_ANSWERS = 2.0


def posterior_skills(votes: Votes, probas: FloatArray) -> FloatArray:
    """Per annotator, the expected share of their answers that are right under the posterior
    (gold items: their gold), smoothed towards the default skill by SKILL_PRIOR_ANSWERS.

    Ranks annotators by accuracy on gold better than Σ_k prior[k]·π_a[k, k] (the confusion
    matrices' diagonal): Spearman ρ on the real crowds (bench/aggregation.py) 0.758 → 0.828 on
    rte, 0.884 → 0.926 on cf_weather, 0.655 → 0.717 on music, about level on the others; a
    matrix estimated from a few answers ranks its annotator by noise."""
    weights = votes.weights if votes.weights is not None else np.ones(votes.size)
    right = np.bincount(
        votes.annotators,
        weights=probas[votes.items, votes.labels] * weights,
        minlength=votes.n_annotators,
    )
    answered = np.bincount(votes.annotators, weights=weights, minlength=votes.n_annotators)
    result: FloatArray = (right + SKILL_PRIOR_ANSWERS * POOLING_SKILL) / (
        answered + SKILL_PRIOR_ANSWERS
    )
    return result


def one_coin_confusion(skill: float, n_labels: int) -> FloatArray:
    """The confusion matrix of an annotator known only by one skill p: p on the diagonal, the
    rest spread evenly (what `WeightedVote` assumes of everyone)."""
    if n_labels == 1:
        return np.ones((1, 1))
    p = float(np.clip(skill, *SKILL_BOUNDS))
    matrix = np.full((n_labels, n_labels), (1 - p) / (n_labels - 1))
    np.fill_diagonal(matrix, p)
    return matrix


def item_log_joint(confusions: FloatArray, answers: IntArray, priors: FloatArray) -> FloatArray:
    """log prior + Σ_v log confusions[v, :, answers[v]] for one item's votes, given each voter's
    (n_labels, n_labels) matrix in `confusions[v]`: the E-step for one item with the parameters
    held fixed (the online form, after a submit, without refitting)."""
    rows = np.arange(answers.size)
    result: FloatArray = np.log(priors) + np.log(confusions[rows, :, answers]).sum(axis=0)
    return result
