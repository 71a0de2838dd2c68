"""Text: the answer closest to all the others, by character error rate.

Free text has no mean. The crowd's medoid, the answer with the lowest weighted mean character
error rate against the answers (its own included at error 0: with equal weights that ranks the
answers exactly as their mean error to the others does, and with skills it favours the skilled),
is the choice reliability-weighted text aggregators make (Li, "Crowdsourced text sequence
aggregation based on hybrid reliability and representation", SIGIR 2020, whose RASA picks the
answer nearest the reliability-weighted crowd). The CER is the grader's
(`app.label_schema.grading.grade_text`: Levenshtein distance over the reference's length,
capped at 1, case and whitespace ignored when the control normalizes), the candidate being the
reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.consensus.merging import Merged, graded, normalised_weights
from app.label_schema.grading import grade_text


def merge_text(
    answers: Sequence[object],
    weights: Sequence[float] | None = None,
    *,
    normalize: bool = True,
) -> Merged:
    """Merge one item's `text` answers: the answer with the highest weighted mean grade
    (1 − CER) of the answers against it; on ties the alphabetically first. A non-string answer
    is never chosen."""
    w = normalised_weights(weights, len(answers))
    texts = [a if isinstance(a, str) else None for a in answers]
    candidates = [n for n, t in enumerate(texts) if t is not None]
    if not candidates:
        return Merged(None, 0.0, tuple(0.0 for _ in answers))
    # grade[i, j]: answer i graded with answer j as the reference.
    grade = np.eye(len(answers))
    for j in candidates:
        for i in range(len(answers)):
            if i != j:
                grade[i, j] = grade_text(answers[i], texts[j], normalize=normalize)
    closeness = w @ grade
    best = max(candidates, key=lambda j: (closeness[j], _reverse(texts[j] or "")))
    value = texts[best]
    return graded(value, list(grade[:, best]), w)


def _reverse(text: str) -> tuple[int, ...]:
    # Sorting key under which the alphabetically first string is the largest.
    return (*(-ord(c) for c in text), 0)
