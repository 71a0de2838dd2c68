"""Categorical questions: a single-choice or rating control is one question over its labels, a
multiple-choice control one yes/no question per label. How an answer value codes to a label
index (`single_question`, `label_question`), what a fit stores of a question
(`question_model`), and one item's posterior with the fitted parameters held fixed
(`item_posterior`, the online form of `aggregation`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from app.consensus.calibrated_dawid_skene import CalibratedDawidSkene
from app.consensus.calibration import tempered
from app.consensus.dawid_skene import DawidSkene, item_log_joint, one_coin_confusion
from app.consensus.estimator import SKILL_BOUNDS
from app.consensus.methods import CONFUSION_METHODS, Method
from app.consensus.model import QuestionModel
from app.consensus.votes import FloatArray, IntArray, Votes
from app.consensus.weighted_vote import DEFAULT_SKILL, WeightedVote
from app.label_schema import ChoicesControl, Control, RatingControl


@dataclass(frozen=True)
class Question:
    """One categorical decision: its label values and how an answer value maps to one."""

    labels: list[Any]
    code: Callable[[Any], int | None]


def single_question(control: ChoicesControl | RatingControl) -> Question:
    labels: list[Any] = (
        list(range(1, control.max + 1))
        if isinstance(control, RatingControl)
        else list(control.labels)
    )
    index = {label: n for n, label in enumerate(labels)}

    def code(value: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None
        return index.get(value)

    return Question(labels, code)


def label_question(label: str) -> Question:
    def code(value: Any) -> int | None:
        return (1 if label in value else 0) if isinstance(value, list) else None

    return Question([False, True], code)


def is_single(control: Control) -> TypeGuard[ChoicesControl | RatingControl]:
    """A control decided by one categorical question (single choice over fixed labels, rating)."""
    return isinstance(control, RatingControl) or (
        isinstance(control, ChoicesControl) and not control.multiple and not is_dynamic(control)
    )


def is_multiple(control: Control) -> TypeGuard[ChoicesControl]:
    """A control decided by one yes/no question per label (multiple choice over fixed labels)."""
    return isinstance(control, ChoicesControl) and control.multiple and not is_dynamic(control)


def is_dynamic(control: ChoicesControl) -> bool:
    """Choices whose options come from the item: merged item by item (`dynamic_choices`)."""
    return control.labels_field is not None


def question_model(estimator: Any, method: Method, votes: Votes, keys: list[str]) -> QuestionModel:
    answered = np.flatnonzero(votes.answers_per_annotator() > 0)
    calibrated = isinstance(estimator, CalibratedDawidSkene)
    fitted = estimator.model_ if calibrated else estimator
    confusions: dict[str, list[list[float]]] = {}
    priors: list[float] = [1.0 / votes.n_labels] * votes.n_labels
    if isinstance(fitted, DawidSkene):
        confusions = {keys[a]: fitted.confusions_[a].tolist() for a in answered}
        priors = [float(p) for p in fitted.priors_]
    return QuestionModel(
        method=method,
        n_labels=votes.n_labels,
        priors=priors,
        temperature=estimator.temperature_ if calibrated else 1.0,
        share_weight=estimator.share_weight_ if calibrated else 0.0,
        skills={keys[a]: float(estimator.skills_[a]) for a in answered},
        confusions=confusions,
    )


@dataclass(frozen=True)
class Posterior:
    """One item's label probabilities (`probas`) and what its label is chosen by (`ranking`:
    the same, except for a Dawid-Skene posterior mixed with the vote shares, whose label stays
    the unmixed posterior's)."""

    ranking: FloatArray
    probas: FloatArray


def item_posterior(
    question: QuestionModel | None,
    method: Method,
    annotators: Sequence[Hashable],
    answers: IntArray,
    n_labels: int,
    prior: Mapping[Hashable, float],
) -> Posterior:
    """One item's label probabilities from its votes, the fitted parameters held fixed; with
    no fitted question, a weighted vote on the prior skills (or a plain one)."""
    if question is not None and question.n_labels != n_labels:
        question = None  # fitted under another schema: not usable
    used = question.method if question is not None else method
    if used in CONFUSION_METHODS and question is None:
        used = Method.weighted_vote
    shares: FloatArray = np.bincount(answers, minlength=n_labels) / answers.size
    if used is Method.majority_vote:
        return Posterior(shares, shares)
    skills = np.array([_skill(question, a, prior) for a in annotators], dtype=np.float64)
    if used in CONFUSION_METHODS and question is not None:
        matrices = np.stack(
            [
                np.asarray(question.confusions[str(a)], dtype=np.float64)
                if str(a) in question.confusions
                else one_coin_confusion(float(s), n_labels)
                for a, s in zip(annotators, skills, strict=True)
            ]
        )
        log_joint = item_log_joint(matrices, answers, np.asarray(question.priors))
        posterior: FloatArray = tempered(log_joint[None, :], question.temperature)[0]
        w = question.share_weight
        return Posterior(posterior, (1.0 - w) * posterior + w * shares if w > 0 else posterior)
    one_item = Votes(
        items=np.zeros(len(annotators), dtype=np.int64),
        annotators=np.arange(len(annotators), dtype=np.int64),
        labels=answers,
        n_items=1,
        n_annotators=len(annotators),
        n_labels=n_labels,
    )
    weighted: FloatArray = WeightedVote.posterior(one_item, skills)[0]
    return Posterior(weighted, weighted)


def _skill(
    question: QuestionModel | None, annotator: Hashable, prior: Mapping[Hashable, float]
) -> float:
    if question is not None and str(annotator) in question.skills:
        return question.skills[str(annotator)]
    return float(prior.get(annotator, DEFAULT_SKILL))


def lone_skill(
    question: QuestionModel | None,
    method: Method,
    annotator: Hashable,
    prior: Mapping[Hashable, float],
) -> float:
    """The skill a model holds of one annotator, for `honest.honest_confidence`: DEFAULT_SKILL
    under a plain vote (which knows no skills), else the fitted or prior skill, within
    SKILL_BOUNDS."""
    used = question.method if question is not None else method
    if used is Method.majority_vote:
        return DEFAULT_SKILL
    return float(np.clip(_skill(question, annotator, prior), *SKILL_BOUNDS))


def chosen_labels(
    control: ChoicesControl, yes: Sequence[float], decided: Sequence[bool]
) -> list[int]:
    """Indices of the labels voted yes, topped up to the control's minimum and cut to its
    maximum by yes-probability, in schema order."""
    by_probability = sorted(range(len(yes)), key=lambda n: (-yes[n], n))
    chosen = [n for n in by_probability if decided[n]]
    for n in by_probability:
        if len(chosen) >= control.min_count:
            break
        if n not in chosen:
            chosen.append(n)
    return sorted(chosen[: control.max_count])


def all_right(yes: Sequence[float], chosen: Sequence[int]) -> float:
    # The chance that every label's decision is right, labels taken as independent.
    picked = set(chosen)
    return float(math.prod(p if n in picked else 1.0 - p for n, p in enumerate(yes)))
