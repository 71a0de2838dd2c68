"""Numbers: the weighted median.

The median is the location estimate that a minority of wild answers cannot move (its breakdown
point is 1/2; Huber, "Robust Statistics", 1981), and the lower weighted median is always one of
the answers, so an integer control gets an integer. Confidence is the weight of the answers
within the control's tolerance of it (`app.label_schema.grading.grade_number`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.consensus.merging import Merged, graded, normalised_weights
from app.label_schema.grading import grade_number


def merge_numbers(
    answers: Sequence[object], weights: Sequence[float] | None = None, *, tolerance: float = 0.0
) -> Merged:
    """Merge one item's `number` answers: the lower weighted median of the numeric answers."""
    w = normalised_weights(weights, len(answers))
    numeric = [
        n
        for n, a in enumerate(answers)
        if isinstance(a, int | float) and not isinstance(a, bool) and np.isfinite(a)
    ]
    if not numeric:
        return Merged(None, 0.0, tuple(0.0 for _ in answers))
    values = np.array([float(answers[n]) for n in numeric])  # type: ignore[arg-type]
    value_w = w[numeric]
    if value_w.sum() <= 0:
        value_w = np.ones_like(value_w)
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(value_w[order])
    median_at = order[int(np.searchsorted(cumulative, cumulative[-1] / 2 - 1e-12))]
    value = answers[numeric[int(median_at)]]
    scores = [grade_number(a, value, tolerance=tolerance) for a in answers]
    return graded(value, scores, w)
