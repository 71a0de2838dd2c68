"""Offline aggregation of label files collected anywhere: what `tessera aggregate` runs.

A labels file has one row per answer: an item, an annotator and a label. Its header says which
columns those are (names compared without regard to case):

- Tessera and crowd-kit: item `item`, `item_id`, `task` or `task_id`; annotator `annotator`,
  `annotator_id`, `worker`, `worker_id` or `performer`; label `label`, `answer` or `result`.
- Amazon Mechanical Turk batch results: item `HITId` (else the one `Input.*` column), annotator
  `WorkerId`, label the one `Answer.*` column; rows whose `AssignmentStatus` is Rejected are
  skipped.
- Toloka results: item `ASSIGNMENT:task_id` (else the one `INPUT:*` column), annotator
  `ASSIGNMENT:worker_id`, label the one `OUTPUT:*` column; rows whose `ASSIGNMENT:status` is
  REJECTED are skipped.

Files may be comma- or tab-separated (Toloka exports TSV). A gold file has an item column (same
names) and a label column (`label`, `gold`, `true_label`, `answer`, or the one `GOLDEN:*`
column). Rows with an empty item, annotator or label are skipped and counted. When an annotator
answered an item more than once, every answer is kept and they share one vote (`votes`: r
answers weigh 1/r each); `LabelFile.repeated` counts the answers beyond the first.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from app.consensus.estimator import CategoricalEstimator
from app.consensus.evaluation import (
    GoldScore,
    annotator_gold_accuracy,
    cross_fitted,
    score_on_gold,
)
from app.consensus.honest import honest_confidences, lone_skills
from app.consensus.methods import Method, estimator_for, method_for
from app.consensus.votes import NO_LABEL, FloatArray, IntArray, VoteEncoder, Votes

_ITEM = ("item", "item_id", "task", "task_id", "hitid", "assignment:task_id")
_ANNOTATOR = (
    "annotator",
    "annotator_id",
    "worker",
    "worker_id",
    "performer",
    "workerid",
    "assignment:worker_id",
)
_LABEL = ("label", "answer", "result")
_GOLD_LABEL = ("label", "gold", "true_label", "answer")
_STATUS = ("assignmentstatus", "assignment:status")
_REJECTED = frozenset(("rejected",))
_ITEM_PREFIXES = ("input:", "input.")
_LABEL_PREFIXES = ("output:", "answer.")
_GOLD_PREFIXES = ("golden:",)

# Gold items are split into this many folds to score the consensus on gold it was not given.
GOLD_FOLDS = 5


class LabelFileError(ValueError):
    """A labels or gold file that cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class _Columns:
    item: int
    annotator: int | None
    label: int
    status: int | None


def _pick(header: Sequence[str], names: Sequence[str], prefixes: Sequence[str], what: str) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    prefixed = [n for n, h in enumerate(lowered) if h.startswith(tuple(prefixes))]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        found = ", ".join(header[n] for n in prefixed)
        raise LabelFileError(f"several {what} columns ({found}); keep only one")
    accepted = ", ".join([*names, *(f"{p}*" for p in prefixes)])
    raise LabelFileError(f"no {what} column; accepted names: {accepted}")


def _optional(header: Sequence[str], names: Sequence[str]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    return next((lowered.index(n) for n in names if n in lowered), None)


def _rows(path: Path) -> Iterator[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        first = file.readline()
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
        file.seek(0)
        yield from csv.reader(file, delimiter=delimiter)


@dataclass
class LabelFile:
    """The answers of a labels file, in file order, and what was skipped."""

    rows: list[tuple[str, str, str]]
    empty: int = 0
    rejected: int = 0
    repeated: int = 0


def read_labels(path: Path) -> LabelFile:
    """Read `item, annotator, label` answers from a labels file (see the module docstring)."""
    rows = _rows(path)
    header = next(rows, None)
    if not header:
        raise LabelFileError(f"{path.name} is empty")
    columns = _Columns(
        item=_pick(header, _ITEM, _ITEM_PREFIXES, "item"),
        annotator=_pick(header, _ANNOTATOR, (), "annotator"),
        label=_pick(header, _LABEL, _LABEL_PREFIXES, "label"),
        status=_optional(header, _STATUS),
    )
    result = LabelFile(rows=[])
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if not row:
            continue
        at = columns.status
        status = row[at] if at is not None and at < len(row) else ""
        if status.strip().lower() in _REJECTED:
            result.rejected += 1
            continue
        cells = [
            row[n].strip() if n is not None and n < len(row) else ""
            for n in (columns.item, columns.annotator, columns.label)
        ]
        item, annotator, label = cells
        if not (item and annotator and label):
            result.empty += 1
            continue
        if (item, annotator) in seen:
            result.repeated += 1
        seen.add((item, annotator))
        result.rows.append((item, annotator, label))
    if not result.rows:
        raise LabelFileError(f"{path.name} holds no answers")
    return result


def read_gold(path: Path) -> dict[str, str]:
    """Read `item, label` gold answers (see the module docstring)."""
    rows = _rows(path)
    header = next(rows, None)
    if not header:
        raise LabelFileError(f"{path.name} is empty")
    item_at = _pick(header, _ITEM, _ITEM_PREFIXES, "item")
    label_at = _pick(header, _GOLD_LABEL, _GOLD_PREFIXES, "gold label")
    gold: dict[str, str] = {}
    for row in rows:
        if len(row) > max(item_at, label_at) and row[item_at].strip() and row[label_at].strip():
            gold[row[item_at].strip()] = row[label_at].strip()
    return gold


@dataclass(frozen=True)
class OfflineAggregate:
    """The result of `aggregate_labels`: the encoded answers, the fitted estimator, the method
    it ran (after the fallback rule) and, with gold, the cross-fitted score on it."""

    encoder: VoteEncoder[str, str]
    votes: Votes
    gold: IntArray
    estimator: CategoricalEstimator
    method: Method
    gold_score: GoldScore | None
    confidence: FloatArray  # the estimator's, made honest (`honest`), as the service reports it


def aggregate_labels(
    answers: LabelFile,
    method: Method,
    gold: dict[str, str] | None = None,
    seed: int = 0,
    label_order: Sequence[str] | None = None,
) -> OfflineAggregate:
    """Fit `method` (or its fallback) on the answers, gold items clamped. With gold, also score
    the consensus on the gold items by cross-fitting (GOLD_FOLDS folds, each predicted with the
    others' gold given). Gold labels no annotator used are added to the label set.
    `label_order` fixes the label order (a job's schema's: ties are broken by it, as in the
    service); labels the answers use beyond them follow in order of appearance."""
    encoder: VoteEncoder[str, str] = VoteEncoder()
    for label in label_order or ():
        encoder.label_index(label)
    votes = encoder.encode(answers.rows)
    gold_index = np.full(votes.n_items, NO_LABEL, dtype=np.int64)
    if gold:
        for label in gold.values():
            encoder.label_index(label)
        votes = encoder.votes(
            votes.items.tolist(), votes.annotators.tolist(), votes.labels.tolist()
        )
        gold_index = encoder.encode_gold(gold)
    used = method_for(method, votes)
    prior = np.full(votes.n_annotators, np.nan)

    def fit(v: Votes, g: IntArray) -> CategoricalEstimator:
        return estimator_for(used, prior, seed).fit(v, g)

    score = None
    n_gold = int((gold_index != NO_LABEL).sum())
    if n_gold >= 2:
        labels, confidence = cross_fitted(
            votes, gold_index, fit, folds=min(GOLD_FOLDS, n_gold), known="others", seed=seed
        )
        score = score_on_gold(labels, confidence, gold_index)
    fitted = fit(votes, gold_index)
    plain = used is Method.majority_vote
    confidence = honest_confidences(
        votes.vote_counts(),
        np.where(gold_index == NO_LABEL, fitted.labels_, NO_LABEL),  # gold stays clamped
        fitted.confidence_,
        lone_skills(votes, None if plain else fitted.skills_),
    )
    return OfflineAggregate(encoder, votes, gold_index, fitted, used, score, confidence)


def write_consensus(result: OfflineAggregate, out: TextIO) -> None:
    """`item,label,confidence` rows, items in file order (an item with no usable answer is
    left out)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["item", "label", "confidence"])
    labels = result.encoder.label_values
    estimator = result.estimator
    for i, item in enumerate(result.encoder.item_ids):
        label = int(estimator.labels_[i])
        if label != NO_LABEL:
            writer.writerow([item, labels[label], f"{float(result.confidence[i]):.6f}"])


def write_skills(result: OfflineAggregate, out: TextIO) -> None:
    """`annotator,answers,skill[,gold_answers,gold_accuracy]` rows, most skilled first."""
    writer = csv.writer(out, lineterminator="\n")
    answers = result.votes.answers_per_annotator()
    skills = result.estimator.skills_
    with_gold = bool((result.gold != NO_LABEL).any())
    accuracy, graded = annotator_gold_accuracy(result.votes, result.gold)
    writer.writerow(
        ["annotator", "answers", "skill", *(["gold_answers", "gold_accuracy"] if with_gold else [])]
    )
    for a in sorted(range(result.votes.n_annotators), key=lambda a: (-skills[a], a)):
        row = [result.encoder.annotator_ids[a], int(answers[a]), f"{float(skills[a]):.4f}"]
        if with_gold:
            row += [int(graded[a]), "" if graded[a] == 0 else f"{float(accuracy[a]):.4f}"]
        writer.writerow(row)
