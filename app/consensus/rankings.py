"""Pairwise preferences and rankings.

- Pairwise preferences: the Bradley–Terry model (Bradley & Terry 1952), fitted by Hunter's MM
  algorithm (Hunter 2004, "MM algorithms for generalized Bradley–Terry models"). With the two
  candidates of one item its maximum-likelihood preference is the share of annotators
  preferring a side, which is the confidence.
- Rankings: a Borda count (each annotator gives a candidate as many points as candidates it beats
  in their order) or a Bradley–Terry fit over the pairs each ranking implies; the confidence is
  the annotators' mean agreement with the consensus order, (Kendall τ + 1) / 2.

Confidences follow the majority vote's meaning: the share of annotators who agree with what was
decided, so a job's per-item confidence stays comparable across controls.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Literal, TypeVar

import numpy as np

from app.label_schema.matching import kendall_tau

H = TypeVar("H", bound=Hashable)
RankingMethod = Literal["borda", "bradley_terry"]


def bradley_terry(
    comparisons: Iterable[tuple[H, H]],
    *,
    prior: float = 0.0,
    iterations: int = 1000,
    tolerance: float = 1e-10,
) -> dict[H, float]:
    """Bradley–Terry strengths (summing to 1) from (winner, loser) pairs, by Hunter's MM
    algorithm: p_i ← (W_i + prior) / Σ_j n_ij / (p_i + p_j), then normalized; P(i beats j) is
    p_i / (p_i + p_j). `prior` adds that many pseudo-wins to every candidate, which keeps the
    strengths positive when a candidate never wins (the plain maximum-likelihood estimate, with
    `prior=0`, gives it 0). One iteration is O(candidates²) array arithmetic."""
    index: dict[H, int] = {}
    pairs: list[tuple[int, int]] = []
    for winner, loser in comparisons:
        pairs.append((index.setdefault(winner, len(index)), index.setdefault(loser, len(index))))
    if not index:
        return {}
    n = len(index)
    wins = np.zeros(n)
    games = np.zeros((n, n))
    for winner_at, loser_at in pairs:
        wins[winner_at] += 1
        games[winner_at, loser_at] += 1
        games[loser_at, winner_at] += 1
    strength = np.full(n, 1.0 / n)
    played = games.sum(axis=1) > 0
    for _ in range(iterations):
        pair = strength[:, None] + strength[None, :]
        ratio = np.divide(games, pair, out=np.zeros_like(games), where=pair > 0)
        denominator = ratio.sum(axis=1)
        updated = np.where(
            played & (denominator > 0),
            (wins + prior) / np.where(denominator > 0, denominator, 1),
            strength,
        )
        total = updated.sum()
        if total <= 0:
            break
        updated = updated / total
        change = float(np.abs(updated - strength).max())
        strength = updated
        if change < tolerance:
            break
    return {item: float(strength[at]) for item, at in index.items()}


def aggregate_pairwise(values: Sequence[str]) -> tuple[str, float]:
    """The preferred side and the Bradley–Terry probability that it is preferred, which for one
    pair is the share of annotators preferring it (ties go to the side chosen first)."""
    strength = bradley_terry(
        ("left", "right") if value == "left" else ("right", "left") for value in values
    )
    first = values[0]
    other = "right" if first == "left" else "left"
    winner = first if strength[first] >= strength[other] else other
    pair = strength[first] + strength[other]
    return winner, strength[winner] / pair if pair > 0 else 0.5


def aggregate_ranking(
    values: Sequence[Sequence[str]], method: RankingMethod = "borda"
) -> tuple[list[str], float]:
    """A consensus order of the candidates from each annotator's order (best first).

    `borda`: candidates by total points (n − 1 − position in each order); `bradley_terry`: by
    Bradley–Terry strength over the pairs every order implies (with half a pseudo-win each, so
    no strength is 0). Ties go to the first annotator's order. Confidence: the annotators' mean
    (τ + 1) / 2 with the consensus; annotators who ranked other candidates than the first
    annotator are left out of it.
    """
    first = list(values[0])
    candidates = set(first)
    orders = [list(v) for v in values if set(v) == candidates and len(v) == len(first)]
    tie_break = {candidate: i for i, candidate in enumerate(first)}
    if method == "borda":
        points: Counter[str] = Counter()
        for order in orders:
            for position, candidate in enumerate(order):
                points[candidate] += len(order) - 1 - position
        score = {candidate: float(points[candidate]) for candidate in first}
    else:
        comparisons = [
            (order[i], order[j])
            for order in orders
            for i in range(len(order))
            for j in range(i + 1, len(order))
        ]
        strengths = bradley_terry(comparisons, prior=0.5)
        score = {candidate: strengths.get(candidate, 0.0) for candidate in first}
    consensus = sorted(first, key=lambda c: (-score[c], tie_break[c]))
    agreement = [(kendall_tau(order, consensus) + 1) / 2 for order in orders]
    return consensus, math.fsum(agreement) / len(agreement)
