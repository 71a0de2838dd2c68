"""Choices whose options come from the item (`labels_field`, Label Studio's `value="$options"`):
a vote over the options the answers carry, item by item.

Such a control has no fixed label set over a job (item 1's `r1` is not item 2's `r1`), so there
is no confusion matrix to fit: each item is decided alone, like the other merged controls
(`merge`), with each annotator's skill p as a one-coin weight log((K−1)·p / (1−p)) (the weighted
vote's, `weighted_vote`), K being the options in play on the item: the control's fixed labels and
every option an answer to the item names (at least 2). The posterior over those options is the
softmax of the weighted totals, so one answer from an annotator of skill p gets confidence p.

- Single choice: the option with the highest posterior (ties: the first in option order, fixed
  labels in schema order then the others sorted); its confidence is that posterior.
- Multiple choice: one yes/no vote per option (K = 2) among the annotators who answered; the
  options voted yes, topped up to the control's `min` and cut to its `max` by yes-probability;
  confidence, the chance that every option's decision is right (`questions.all_right`).

Weights all exactly 1 (the `majority_vote` method: everyone alike) give the vote shares instead.
Answers are graded against the result with the gold grader (`grade_choices`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.consensus.estimator import SKILL_BOUNDS, softmax_rows
from app.consensus.merging import Merged
from app.consensus.questions import all_right, chosen_labels
from app.label_schema import ChoicesControl
from app.label_schema.grading import grade_choices


def merge_dynamic_choices(
    control: ChoicesControl, answers: Sequence[object], weights: Sequence[float] | None
) -> Merged:
    """One item's answers to a choices control with `labels_field`, merged as described above;
    `weights` are the annotators' skills (None or all 1: everyone alike)."""
    chosen_sets = [_chosen(control, answer) for answer in answers]
    options = _options(control, chosen_sets)
    alike = weights is None or all(w == 1.0 for w in weights)
    skills = np.full(len(answers), 1.0) if alike else np.asarray(weights, dtype=np.float64)
    valid = [(n, chosen) for n, chosen in enumerate(chosen_sets) if chosen is not None]
    if not valid or not options:
        return Merged(None, 0.0, tuple(0.0 for _ in answers))
    voter_skills = skills[[n for n, _ in valid]]
    if control.multiple:
        yes = [
            float(_posterior([int(o in chosen) for _, chosen in valid], voter_skills, 2, alike)[1])
            for o in options
        ]
        picked = chosen_labels(control, yes, [p > 0.5 for p in yes])
        value: Any = [options[n] for n in picked]
        confidence = all_right(yes, picked)
    else:
        index = {o: n for n, o in enumerate(options)}
        votes = [index[next(iter(chosen))] for _, chosen in valid]
        probas = _posterior(votes, voter_skills, max(2, len(options)), alike)[: len(options)]
        winner = int(np.argmax(probas))
        value, confidence = options[winner], float(probas[winner])
    scores = tuple(grade_choices(a, value, multiple=control.multiple) for a in answers)
    return Merged(value, confidence, scores)


def _chosen(control: ChoicesControl, answer: object) -> frozenset[str] | None:
    """The options an answer picks; None for a malformed one."""
    if control.multiple:
        if isinstance(answer, list) and all(isinstance(o, str) for o in answer):
            return frozenset(answer)
        return None
    return frozenset((answer,)) if isinstance(answer, str) and answer else None


def _options(control: ChoicesControl, chosen_sets: Sequence[frozenset[str] | None]) -> list[str]:
    fixed = list(control.labels)
    carried = {o for chosen in chosen_sets if chosen for o in chosen} - set(fixed)
    return fixed + sorted(carried)


def _posterior(votes: Sequence[int], skills: Any, k: int, alike: bool) -> Any:
    """(k,) probabilities over labels 0..k−1 from the `votes` (label indices) of voters of the
    given skills: one-coin log-odds weights, or the vote shares when everyone counts alike."""
    totals = np.zeros(k)
    if alike:
        np.add.at(totals, np.asarray(votes, dtype=np.int64), 1.0)
        return totals / totals.sum()
    p = np.clip(np.asarray(skills, dtype=np.float64), *SKILL_BOUNDS)
    np.add.at(totals, np.asarray(votes, dtype=np.int64), np.log((k - 1) * p / (1 - p)))
    return softmax_rows(totals[None, :])[0]
