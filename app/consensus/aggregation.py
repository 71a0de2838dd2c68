"""The dispatcher: a label schema's answers in; per item a consensus answer and a confidence, per
annotator a skill estimate out, with the right estimator for each control.

Two forms, one set of rules:

- `aggregate_job` fits over all of a job's answers (the batch refit: periodic, on demand, at
  completion) and returns, besides the results, a `ConsensusModel`: what was learnt of each
  annotator (confusion matrices, skills), JSON-able, for the service to store.
- `aggregate_item` computes one item's consensus from its answers and a stored model without
  refitting (the online form, after each submit): Dawid-Skene's posterior for one item given the
  fitted matrices, calibrated as the fit was (the stored temperature, or the stored weight of the
  item's vote shares), or a weighted vote with the fitted skills. Annotators the model has not
  seen count with a one-coin matrix built from their prior skill.

Per control type:

- `choices` (single) and `rating`: the method's categorical estimator over label indices (one
  question each; `questions`).
- `choices` whose options come from the item (`labels_field`): merged item by item over the
  options the answers carry (`dynamic_choices`), like the controls below.
- `choices` (multiple): one yes/no question per label, each as above; the answer is the labels
  voted yes, topped up to the control's `min` and cut to its `max` by probability; confidence
  is the product of the per-label confidences (the chance that every label is right).
- `boxes`, `polygons`, `keypoints`, `spans`, `text`, `number`: merged item by item
  (`merge.merge_control`: `geometry`, `spans`, `text`, `numbers`) weighted by skill; in batch
  twice, first with the prior skills, then with each annotator's smoothed agreement with the
  first result. `segments`, `pairwise`, `ranking`, `taxonomy` go the same way, every annotator
  counted alike (`segments`, `rankings`, `taxonomy`).

`majority_vote` weighs everyone alike in every control. An item's confidence is the lowest of
its controls' (more answers help while any control is unsure). Gold items get their gold answer
with confidence 1, and annotators are judged against it. The fallback from Dawid-Skene to the
weighted vote while annotators have answered little is `methods.method_for`; the model records
the method each question was actually fitted with.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.consensus.estimator import SKILL_BOUNDS
from app.consensus.honest import honest_confidence, honest_confidences, lone_skills
from app.consensus.merge import merge_control
from app.consensus.merging import Merged
from app.consensus.methods import (
    DEFAULT_METHOD,
    Method,
    estimator_for,
    method_for,
)
from app.consensus.model import ConsensusModel, QuestionModel
from app.consensus.questions import (
    Posterior,
    Question,
    all_right,
    chosen_labels,
    is_multiple,
    is_single,
    item_posterior,
    label_question,
    lone_skill,
    question_model,
    single_question,
)
from app.consensus.votes import (
    NO_LABEL,
    FloatArray,
    IntArray,
    KeyArray,
    Votes,
    item_keys,
    most_likely,
)
from app.consensus.weighted_vote import DEFAULT_SKILL
from app.label_schema import ChoicesControl, Control, LabelSchema, RatingControl
from app.label_schema.grading import grade_controls

ItemId = Hashable
AnnotatorId = Hashable
Answer = Mapping[str, Any]


@dataclass(frozen=True)
class ItemConsensus:
    """One item's consensus: `answer` keyed by control (controls nobody answered are absent);
    `confidence`, the lowest of `confidences` (per control), 0 without any answer."""

    answer: dict[str, Any]
    confidence: float
    confidences: dict[str, float]
    answer_count: int


@dataclass(frozen=True)
class AnnotatorEstimate:
    """An annotator's estimated probability of a correct answer: `skill` over all controls
    (weighted by answers), `controls` per control; `answers` counts the items answered."""

    skill: float
    answers: int
    controls: dict[str, float]


@dataclass(frozen=True)
class JobConsensus:
    items: dict[ItemId, ItemConsensus]
    annotators: dict[AnnotatorId, AnnotatorEstimate]
    model: ConsensusModel


# --- Other controls (merged item by item: `merge`) ---------------------------------------------


def _smoothed_mean(total: float, count: int) -> float:
    # Two pseudo-answers at the default skill: one lucky answer is not a perfect annotator.
    return (total + 2.0 * DEFAULT_SKILL) / (count + 2.0)


# --- Batch ------------------------------------------------------------------------------------


@dataclass
class _Job:
    """A job's answers, indexed once: items and annotators by position."""

    schema: LabelSchema
    method: Method
    items: list[ItemId]
    answers: list[Sequence[tuple[AnnotatorId, Answer]]]
    gold: list[Answer | None]
    annotators: dict[AnnotatorId, int]
    prior: dict[AnnotatorId, float]
    seed: int
    keys: KeyArray = field(init=False)
    annotator_keys: list[str] = field(init=False)
    prior_skills: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        self.keys = item_keys(self.items)
        self.annotator_keys = [str(a) for a in self.annotators]
        self.prior_skills = np.array(
            [self.prior.get(a, np.nan) for a in self.annotators], dtype=np.float64
        )

    def values(self, control: Control) -> list[tuple[int, int, Any]]:
        """(item index, annotator index, value) of every answer holding the control."""
        name = control.name
        return [
            (i, self.annotators[annotator], answer[name])
            for i, pairs in enumerate(self.answers)
            for annotator, answer in pairs
            if name in answer
        ]

    def votes(
        self, control: Control, question: Question, values: list[tuple[int, int, Any]]
    ) -> tuple[Votes, IntArray]:
        """The question's votes from the control's `values` (see `values`), and its gold."""
        coded = [(i, a, question.code(v)) for i, a, v in values]
        kept = [(i, a, label) for i, a, label in coded if label is not None]
        votes = Votes(
            items=np.array([i for i, _, _ in kept], dtype=np.int64),
            annotators=np.array([a for _, a, _ in kept], dtype=np.int64),
            labels=np.array([label for _, _, label in kept], dtype=np.int64),
            n_items=len(self.items),
            n_annotators=len(self.annotators),
            n_labels=len(question.labels),
            item_keys=self.keys,
        )
        gold = np.full(len(self.items), NO_LABEL, dtype=np.int64)
        for i, known in enumerate(self.gold):
            if known is not None and control.name in known:
                label = question.code(known[control.name])
                gold[i] = NO_LABEL if label is None else label
        return votes, gold

    def fit(self, votes: Votes, gold: IntArray) -> tuple[Any, QuestionModel]:
        used = method_for(self.method, votes)
        estimator = estimator_for(used, self.prior_skills, self.seed).fit(votes, gold)
        return estimator, question_model(estimator, used, votes, self.annotator_keys)


@dataclass
class _ControlResult:
    values: dict[int, Any] = field(default_factory=dict)
    confidences: dict[int, float] = field(default_factory=dict)
    skills: dict[int, tuple[float, int]] = field(default_factory=dict)  # (skill, answers)


def _fit_single(job: _Job, control: ChoicesControl | RatingControl) -> tuple[_ControlResult, Any]:
    question = single_question(control)
    votes, gold = job.votes(control, question, job.values(control))
    estimator, model = job.fit(votes, gold)
    result = _ControlResult()
    plain = model.method is Method.majority_vote
    confidence = honest_confidences(
        votes.vote_counts(),
        estimator.labels_,
        estimator.confidence_,
        lone_skills(votes, None if plain else estimator.skills_),
    )
    for i in np.flatnonzero(estimator.labels_ != NO_LABEL).tolist():
        result.values[i] = question.labels[estimator.labels_[i]]
        result.confidences[i] = float(confidence[i])
    counts = votes.answers_per_annotator()
    for a in np.flatnonzero(counts).tolist():
        result.skills[a] = (float(estimator.skills_[a]), int(counts[a]))
    return result, model


def _fit_multiple(job: _Job, control: ChoicesControl) -> tuple[_ControlResult, Any]:
    n_items, n_labels = len(job.items), len(control.labels)
    yes = np.zeros((n_items, n_labels))
    decided = np.zeros((n_items, n_labels), dtype=bool)
    answered = np.zeros(n_items, dtype=bool)
    skill_sum = np.zeros(len(job.annotators))
    counts = np.zeros(len(job.annotators), dtype=np.int64)
    models: dict[str, QuestionModel] = {}
    values = job.values(control)
    for n, label in enumerate(control.labels):
        votes, gold = job.votes(control, label_question(label), values)
        estimator, models[label] = job.fit(votes, gold)
        yes[:, n] = estimator.probas_[:, 1]
        decided[:, n] = estimator.labels_ == 1
        answered |= estimator.labels_ != NO_LABEL
        counts = votes.answers_per_annotator()  # the same for every label
        skill_sum += np.where(counts > 0, estimator.skills_, 0.0)
    result = _ControlResult()
    for i in np.flatnonzero(answered).tolist():
        chosen = chosen_labels(control, yes[i].tolist(), decided[i].tolist())
        result.values[i] = [control.labels[n] for n in chosen]
        result.confidences[i] = all_right(yes[i].tolist(), chosen)
    for a in np.flatnonzero(counts).tolist():
        result.skills[a] = (float(skill_sum[a] / n_labels), int(counts[a]))
    return result, models


def _fit_merged(job: _Job, control: Control) -> tuple[_ControlResult, Any]:
    """Merge a non-categorical control item by item; unless the method is a plain majority
    vote, twice: weighted by the prior skills, then by each annotator's smoothed mean grade
    against the first result. The model keeps the weights of the final merge (so that the
    online form reproduces it); the skill estimates are the grades against that merge."""
    by_item: dict[int, list[tuple[int, Any]]] = {}
    for i, a, value in job.values(control):
        by_item.setdefault(i, []).append((a, value))
    weighted = job.method is not Method.majority_vote
    weights = {
        index: float(job.prior.get(annotator, DEFAULT_SKILL)) if weighted else 1.0
        for annotator, index in job.annotators.items()
    }
    result = _ControlResult()
    used: dict[int, float] = {}
    for _ in range(2 if weighted else 1):
        result = _ControlResult()
        used = dict(weights)
        totals: dict[int, float] = {}
        counts: dict[int, int] = {}
        for i, pairs in by_item.items():
            known = job.gold[i]
            if known is not None and control.name in known:
                key = known[control.name]
                scores = [_grade(job.schema, control, value, key) for _, value in pairs]
                merged = Merged(key, 1.0, tuple(scores))
            else:
                merged = _merge(control, [v for _, v in pairs], [weights[a] for a, _ in pairs])
            result.values[i] = merged.value
            result.confidences[i] = merged.confidence
            for (a, _), score in zip(pairs, merged.scores, strict=True):
                totals[a] = totals.get(a, 0.0) + score
                counts[a] = counts.get(a, 0) + 1
        result.skills = {a: (_smoothed_mean(totals[a], counts[a]), counts[a]) for a in totals}
        if weighted:
            weights.update({a: skill for a, (skill, _) in result.skills.items()})
    return result, {job.annotator_keys[a]: used[a] for a in result.skills}


def _merge(control: Control, values: Sequence[Any], weights: Sequence[float]) -> Merged:
    """`merge_control`, its confidence made honest: one answer is at most its annotator's skill
    (the weight, DEFAULT_SKILL when everyone weighs 1)."""
    merged = merge_control(control, values, weights)
    if len(values) != 1:
        return merged
    lone = DEFAULT_SKILL if weights[0] == 1.0 else float(np.clip(weights[0], *SKILL_BOUNDS))
    confidence = honest_confidence(merged.confidence, lone, [1.0], 0)
    return Merged(merged.value, confidence, merged.scores)


def _grade(schema: LabelSchema, control: Control, answer: object, key: object) -> float:
    return grade_controls(schema, {control.name: answer}, {control.name: key})[control.name]


def aggregate_job(
    schema: LabelSchema,
    answers_by_item: Mapping[ItemId, Sequence[tuple[AnnotatorId, Answer]]],
    method: Method | str = DEFAULT_METHOD,
    *,
    skills: Mapping[AnnotatorId, float] | None = None,
    gold: Mapping[ItemId, Answer] | None = None,
    seed: int = 0,
) -> JobConsensus:
    """Fit `method` over all of a job's answers.

    `answers_by_item` maps each item to its (annotator, answer) pairs; answers are assumed
    valid for `schema` (a value a control cannot hold is ignored). `skills` are prior estimates
    of annotators' probability of answering correctly (from earlier work; the others start at
    DEFAULT_SKILL). `gold` holds the known answers of gold items: those items get them as their
    consensus, and the estimators learn from them. Deterministic for a seed. Raises ValueError
    for an unknown method.
    """
    gold = gold or {}
    annotators: dict[AnnotatorId, int] = {}
    for pairs in answers_by_item.values():
        for annotator, _ in pairs:
            annotators.setdefault(annotator, len(annotators))
    job = _Job(
        schema=schema,
        method=Method(method),
        items=list(answers_by_item),
        answers=list(answers_by_item.values()),
        gold=[gold.get(item) for item in answers_by_item],
        annotators=annotators,
        prior=dict(skills or {}),
        seed=seed,
    )
    model = ConsensusModel(method=job.method)
    results: dict[str, _ControlResult] = {}
    for control in schema.controls:
        if is_single(control):
            results[control.name], model.questions[control.name] = _fit_single(job, control)
        elif is_multiple(control):
            results[control.name], model.multiple[control.name] = _fit_multiple(job, control)
        else:
            results[control.name], model.weights[control.name] = _fit_merged(job, control)
    return JobConsensus(
        items={item: _item_consensus(job, i, results) for i, item in enumerate(job.items)},
        annotators=_annotator_estimates(job, results),
        model=model,
    )


def _item_consensus(job: _Job, i: int, results: Mapping[str, _ControlResult]) -> ItemConsensus:
    answer = {name: r.values[i] for name, r in results.items() if i in r.values}
    confidences = {name: r.confidences[i] for name, r in results.items() if i in r.confidences}
    known = job.gold[i]
    if known is not None:
        graded = {k: v for k, v in known.items() if job.schema.control(k) is not None}
        answer.update(graded)
        confidences.update(dict.fromkeys(graded, 1.0))
    return ItemConsensus(
        answer=answer,
        confidence=min(confidences.values()) if confidences else 0.0,
        confidences=confidences,
        answer_count=len(job.answers[i]),
    )


def _annotator_estimates(
    job: _Job, results: Mapping[str, _ControlResult]
) -> dict[AnnotatorId, AnnotatorEstimate]:
    items_answered = np.zeros(len(job.annotators), dtype=np.int64)
    for pairs in job.answers:
        for annotator in {a for a, _ in pairs}:
            items_answered[job.annotators[annotator]] += 1
    out: dict[AnnotatorId, AnnotatorEstimate] = {}
    for annotator, a in job.annotators.items():
        per_control = {name: r.skills[a] for name, r in results.items() if a in r.skills}
        count = sum(n for _, n in per_control.values())
        skill = sum(s * n for s, n in per_control.values()) / count if count else DEFAULT_SKILL
        out[annotator] = AnnotatorEstimate(
            skill=float(skill),
            answers=int(items_answered[a]),
            controls={name: s for name, (s, _) in per_control.items()},
        )
    return out


# --- Online -----------------------------------------------------------------------------------


def aggregate_item(
    schema: LabelSchema,
    answers: Sequence[tuple[AnnotatorId, Answer]],
    model: ConsensusModel | None = None,
    method: Method | str = DEFAULT_METHOD,
    *,
    skills: Mapping[AnnotatorId, float] | None = None,
    item_id: ItemId | None = None,
    gold: Answer | None = None,
    seed: int = 0,
) -> ItemConsensus:
    """One item's consensus from its (annotator, answer) pairs with the parameters of `model`
    (the last `aggregate_job`'s) held fixed: no refit.

    The model's method wins over `method`. Annotators the model does not know count with their
    `skills` prior (DEFAULT_SKILL when absent). Without a model, categorical controls take the
    weighted vote on the prior skills (a plain vote under `majority_vote`). `item_id` keys the
    tie-break, so that a tie falls as it does in the batch fit; `gold`, when given, is the
    answer (confidence 1).
    """
    method = model.method if model is not None else Method(method)
    prior = dict(skills or {})
    key = item_keys([item_id if item_id is not None else 0])
    value: dict[str, Any] = {}
    confidences: dict[str, float] = {}
    for control in schema.controls:
        present = [(a, answer[control.name]) for a, answer in answers if control.name in answer]
        if not present:
            continue
        if is_single(control):
            question = single_question(control)
            fitted = model.questions.get(control.name) if model is not None else None
            posterior = _online_posterior(fitted, method, question, present, prior)
            if posterior is None:
                continue
            winner = int(most_likely(posterior.ranking[None, :], key, seed)[0])
            value[control.name] = question.labels[winner]
            coded = [(a, question.code(v)) for a, v in present]
            kept = [(a, c) for a, c in coded if c is not None]
            counts = np.bincount([c for _, c in kept], minlength=len(question.labels))
            lone = lone_skill(fitted, method, kept[0][0], prior)
            confidences[control.name] = honest_confidence(
                float(posterior.probas[winner]), lone, counts.tolist(), winner
            )
        elif is_multiple(control):
            per_label = model.multiple.get(control.name, {}) if model is not None else {}
            yes: list[float] = []
            decided: list[bool] = []
            for label in control.labels:
                posterior = _online_posterior(
                    per_label.get(label), method, label_question(label), present, prior
                )
                yes.append(float(posterior.probas[1]) if posterior is not None else 0.0)
                decided.append(
                    posterior is not None
                    and int(most_likely(posterior.ranking[None, :], key, seed)[0]) == 1
                )
            chosen = chosen_labels(control, yes, decided)
            value[control.name] = [control.labels[n] for n in chosen]
            confidences[control.name] = all_right(yes, chosen)
        else:
            fitted_weights = model.weights.get(control.name, {}) if model is not None else {}
            weights = [
                1.0
                if method is Method.majority_vote
                else fitted_weights.get(str(a), prior.get(a, DEFAULT_SKILL))
                for a, _ in present
            ]
            merged = _merge(control, [v for _, v in present], weights)
            value[control.name] = merged.value
            confidences[control.name] = merged.confidence
    if gold is not None:
        graded = {k: v for k, v in gold.items() if schema.control(k) is not None}
        value.update(graded)
        confidences.update(dict.fromkeys(graded, 1.0))
    return ItemConsensus(
        answer=value,
        confidence=min(confidences.values()) if confidences else 0.0,
        confidences=confidences,
        answer_count=len(answers),
    )


def _online_posterior(
    fitted: QuestionModel | None,
    method: Method,
    question: Question,
    present: Sequence[tuple[AnnotatorId, Any]],
    prior: Mapping[AnnotatorId, float],
) -> Posterior | None:
    coded = [(a, question.code(v)) for a, v in present]
    kept = [(a, label) for a, label in coded if label is not None]
    if not kept:
        return None
    return item_posterior(
        fitted,
        method,
        [a for a, _ in kept],
        np.array([label for _, label in kept], dtype=np.int64),
        len(question.labels),
        prior,
    )
