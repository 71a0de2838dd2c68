"""Honest confidence (issue 21): an item's confidence no higher than its answers can show, in the
batch fit, online after a submit and offline alike.

- One answer is not certainty: an item with a single answer (one annotator's; their repeats
  share one vote) has a confidence of at most the skill the model holds of that annotator (the
  fitted skill, their prior skill when the model has not seen them, DEFAULT_SKILL under a plain
  vote, which knows no skills): the chance that one answer from them is right.
- A split is not a decision: where the winning label does not lead the vote alone (another label
  has at least as many votes), the confidence is at most an even share among the labels that tie
  with or beat it (1/2 for a 1-1 split), however the fitted skills differ, so that a dynamic
  overlap asks for another answer instead of trusting one annotator over another on skill
  estimates alone.

Items without a label or without votes (gold items nobody answered) keep what they have.
"""

from __future__ import annotations

import numpy as np

from app.consensus.estimator import SKILL_BOUNDS
from app.consensus.votes import NO_LABEL, FloatArray, IntArray, Votes
from app.consensus.weighted_vote import DEFAULT_SKILL


def honest_confidences(
    counts: FloatArray, labels: IntArray, confidence: FloatArray, lone: FloatArray
) -> FloatArray:
    """Per item (rows of `counts`, votes per label), `confidence` capped by the rules above;
    `lone[i]` is the skill of item i's annotator where it has a single answer."""
    out = np.asarray(confidence, dtype=np.float64).copy()
    totals = counts.sum(axis=1)
    rows = np.flatnonzero((labels != NO_LABEL) & (totals > 0))
    if rows.size == 0:
        return out
    single = rows[np.isclose(totals[rows], 1.0)]
    out[single] = np.minimum(out[single], lone[single])
    winner_votes = counts[rows, labels[rows]]
    ahead = (counts[rows] >= winner_votes[:, None]).sum(axis=1)
    split = ahead > 1
    out[rows[split]] = np.minimum(out[rows[split]], 1.0 / ahead[split])
    return out


def honest_confidence(confidence: float, lone: float, counts: list[float], winner: int) -> float:
    """`honest_confidences` for one item (the online form)."""
    capped = honest_confidences(
        np.asarray([counts], dtype=np.float64),
        np.asarray([winner], dtype=np.int64),
        np.asarray([confidence]),
        np.asarray([lone]),
    )
    return float(capped[0])


def lone_skills(votes: Votes, skills: FloatArray | None) -> FloatArray:
    """Per item, the skill (within SKILL_BOUNDS) of the annotator of its last vote: the one that
    counts where the item has a single answer. `skills` per annotator; None: DEFAULT_SKILL."""
    per_annotator = (
        np.full(votes.n_annotators, DEFAULT_SKILL)
        if skills is None
        else np.clip(np.nan_to_num(skills, nan=DEFAULT_SKILL), *SKILL_BOUNDS)
    )
    out = np.full(votes.n_items, DEFAULT_SKILL)
    out[votes.items] = per_annotator[votes.annotators]
    return out
