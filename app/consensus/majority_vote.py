"""Majority vote: each item's most frequent label; confidence is the winning label's share.

The baseline of repeated labelling (Sheng, Provost & Ipeirotis, "Get another label? Improving
data quality and data mining using multiple, noisy labelers", KDD 2008). It needs no fitting
and treats every annotator alike; its vote shares turned out better calibrated than
Dawid-Skene's posteriors on noisy multi-class data (PERFORMANCE.md), which is why it stays.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from app.consensus.estimator import agreement_with, check_gold, clamp_gold, decide
from app.consensus.votes import FloatArray, IntArray, Votes


class MajorityVote:
    """Majority vote; ties go to `votes.most_likely`'s seeded rule. Gold items are reported
    with their gold label. `skills_` is each annotator's (smoothed) agreement with the result."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, votes: Votes, gold: IntArray | None = None) -> Self:
        gold = check_gold(votes, gold)
        counts = votes.vote_counts()
        totals = counts.sum(axis=1, keepdims=True)
        self.probas_: FloatArray = np.divide(
            counts, totals, out=np.zeros_like(counts), where=totals > 0
        )
        clamp_gold(self.probas_, gold)
        self.labels_: IntArray
        self.confidence_: FloatArray
        self.labels_, self.confidence_ = decide(self.probas_, votes, self.seed)
        self.skills_: FloatArray = agreement_with(self.labels_, votes)
        return self
