"""What the aggregators of one item's non-categorical answers (shapes, spans, text, numbers)
return, and how they weigh annotators.

These controls have no label set to fit a confusion matrix over, so they are merged item by
item: each answer weighs its annotator's skill (a weight of 1 for everyone is a plain vote), and
every annotator's answer is then graded against the merged answer with the graders of gold and
qualification tests (`app.label_schema.grading`: F1 of matched shapes or spans, 1 − CER, within
tolerance). Those grades are the confidence (their weighted mean) and, summed over a job, each
annotator's skill on the control.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.consensus.votes import FloatArray


@dataclass(frozen=True)
class Merged:
    """One item's merged answer for one control: `value` (JSON, shaped like an answer),
    `confidence` in [0, 1] and `scores[n]`, answer n graded against `value`."""

    value: Any
    confidence: float
    scores: tuple[float, ...]


def normalised_weights(weights: Sequence[float] | None, count: int) -> FloatArray:
    """Weights as an array of `count` non-negative numbers summing to 1 (uniform when absent,
    all zero or of the wrong length)."""
    if weights is None or len(weights) != count:
        return np.full(count, 1.0 / count) if count else np.empty(0)
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = float(w.sum())
    return w / total if total > 0 else np.full(count, 1.0 / count)


def graded(value: Any, scores: Sequence[float], weights: FloatArray) -> Merged:
    """`Merged` whose confidence is the weighted mean of the answers' `scores`."""
    confidence = float(np.dot(weights, np.asarray(scores, dtype=np.float64)))
    return Merged(value, min(1.0, max(0.0, confidence)), tuple(float(s) for s in scores))
