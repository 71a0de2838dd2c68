"""Reputation-weighted vote: each vote counts by its annotator's skill, on a log-odds scale.

Under the "one-coin" model an annotator with skill p gives the true label with probability p and
each of the K-1 others with probability (1-p)/(K-1). The optimal weighted vote then gives a vote
the weight log((K-1)p / (1-p)) and the posterior over labels is a softmax of the weighted vote
totals (Nitzan & Paroush, "Optimal decision rules in uncertain dichotomous choice situations",
International Economic Review 1982; for K labels and the iterative estimate of p below, Li & Yu,
"Error rate bounds and iterative weighted majority voting for crowdsourcing", arXiv:1411.4086).

Skills come from outside (reputation, or a previous fit) where known; the others are estimated
by iterating: weighted vote, then each annotator's smoothed agreement with it (gold answers
where known), then vote again. One number per annotator needs far fewer answers than a K×K
confusion matrix, which is why this is the fallback while annotators have answered little.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from app.consensus.estimator import (
    SKILL_BOUNDS,
    agreement_with,
    check_gold,
    clamp_gold,
    decide,
    softmax_rows,
)
from app.consensus.votes import NO_LABEL, FloatArray, IntArray, Votes

# The skill assumed for an annotator about whom nothing is known: about the median annotator's
# accuracy on the real crowd sets in ../shared/data/crowd (0.70-0.82 per vote).
DEFAULT_SKILL = 0.7


class WeightedVote:
    """Weighted vote with log-odds weights.

    `skills` (n_annotators,) fixes known annotators' skills (NaN: unknown). Unknown skills are
    estimated over `n_iter` rounds (0: they are `default_skill`); each estimate is the
    annotator's agreement with the current consensus, smoothed towards `default_skill` by
    `prior_strength` pseudo-answers. Gold items count with their gold label.
    """

    def __init__(
        self,
        skills: FloatArray | None = None,
        default_skill: float = DEFAULT_SKILL,
        n_iter: int = 10,
        prior_strength: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.skills = skills
        self.default_skill = default_skill
        self.n_iter = n_iter
        self.prior_strength = prior_strength
        self.seed = seed

    def fit(self, votes: Votes, gold: IntArray | None = None) -> Self:
        gold = check_gold(votes, gold)
        skills = np.full(votes.n_annotators, self.default_skill)
        known = np.zeros(votes.n_annotators, dtype=bool)
        if self.skills is not None:
            given = np.asarray(self.skills, dtype=np.float64)
            if given.shape != (votes.n_annotators,):
                raise ValueError("skills needs one entry per annotator (NaN where unknown)")
            known = ~np.isnan(given)
            skills[known] = given[known]
        if not known.all():
            labels = np.full(votes.n_items, NO_LABEL, dtype=np.int64)
            for _ in range(self.n_iter):
                # The first round, everyone unknown at the default skill, is a plain majority.
                probas = self.posterior(votes, skills)
                clamp_gold(probas, gold)
                new_labels, _ = decide(probas, votes, self.seed)
                if np.array_equal(new_labels, labels):
                    break
                labels = new_labels
                agreement = agreement_with(labels, votes, self.default_skill, self.prior_strength)
                skills[~known] = agreement[~known]
        probas = self.posterior(votes, skills)
        clamp_gold(probas, gold)
        self.probas_: FloatArray = probas
        self.labels_: IntArray
        self.confidence_: FloatArray
        self.labels_, self.confidence_ = decide(probas, votes, self.seed)
        self.skills_: FloatArray = skills
        return self

    @staticmethod
    def posterior(votes: Votes, skills: FloatArray) -> FloatArray:
        """(n_items, n_labels) one-coin posterior under a uniform label prior; zero rows for
        items without votes."""
        k = votes.n_labels
        p = np.clip(skills, *SKILL_BOUNDS)
        weights = np.log(max(k - 1, 1) * p / (1 - p))
        totals: FloatArray = np.bincount(
            votes.items * k + votes.labels,
            weights=weights[votes.annotators]
            if votes.weights is None
            else weights[votes.annotators] * votes.weights,
            minlength=votes.n_items * k,
        ).astype(np.float64)
        probas = softmax_rows(totals.reshape(votes.n_items, k))
        voted = np.bincount(votes.items, minlength=votes.n_items) > 0
        probas[~voted] = 0.0
        return probas
