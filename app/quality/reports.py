"""What people are shown: an annotator's own standing, a client's per-job quality report, and
an admin's evidence page. Reads only.

Agreement in the job report is percent agreement for now (`job_agreement`, the one call the
estimators' Fleiss' kappa and Krippendorff's alpha will take over). It is computed when the
report is asked for, streaming the job's answers once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.consensus.agreement import Level, fleiss_kappa, krippendorff_alpha, percent_agreement
from app.consensus.votes import VoteEncoder
from app.core.settings import Settings
from app.jobs import gold
from app.label_schema import ChoicesControl, LabelSchema, NumberControl, RatingControl
from app.models.consensus import ItemResult
from app.models.jobs import COUNTED_WORK, Answer, Assignment, AssignmentStatus, Item, Job
from app.models.quality import AnnotatorStats, ReviewDecision
from app.quality import reputation, rules, tracking
from app.quality.reputation import NextTier, Standing

HISTOGRAM_BINS = 10
STREAM_ROWS = 5000


# --- the annotator's own standing ----------------------------------------------------------------


@dataclass(frozen=True)
class AnnotatorQuality:
    standing: Standing
    next_tier: NextTier | None
    stats: list[AnnotatorStats]


def annotator_quality(session: Session, settings: Settings, annotator_id: int) -> AnnotatorQuality:
    """The annotator's effective and computed reputation and tier, the override in force, what
    the next tier needs, and their figures overall, per job and per skill."""
    standing = reputation.standing(session, annotator_id)
    tasks = standing.computed.volume if standing.computed is not None else 0
    following = reputation.next_tier(
        standing.tier, standing.reputation, tasks, reputation.TierThresholds.of(settings)
    )
    return AnnotatorQuality(standing, following, tracking.stats_of(session, annotator_id))


# --- the client's report on a job ----------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    metric: str
    value: float | None  # None: no item has two answers yet
    per_control: dict[str, float | None]
    items: int  # items with two or more answers
    controls: dict[str, ControlAgreement]


@dataclass(frozen=True)
class ControlAgreement:
    """One control's agreement over the items with two or more answers to it (None where a
    measure is undefined: too few answers, or no disagreement possible by chance)."""

    percent_agreement: float | None
    fleiss_kappa: float | None  # categorical controls (choices, rating)
    krippendorff_alpha: float | None
    alpha_level: str  # interval for rating and number controls, else nominal
    items: int


@dataclass(frozen=True)
class PrelabelUse:
    """How often answers to pre-labelled regular items kept the pre-label unchanged, over the
    job and per annotator (annotator id → (answers, kept)). Rejected work is left out."""

    shown: bool  # the job shows pre-labels to annotators
    answers: int
    kept: int
    per_annotator: dict[int, tuple[int, int]]


@dataclass(frozen=True)
class JobReport:
    job_id: int
    methods: dict[str, int]  # consensus method → items
    agreement: Agreement
    confidence_histogram: list[int]  # HISTOGRAM_BINS counts over [0, 1]
    assignments: dict[str, int]  # review status → assignments
    annotators: list[AnnotatorStats]
    out_of_gold: int  # annotators who have been shown every gold item of the job
    prelabels: PrelabelUse


def job_report(session: Session, job: Job) -> JobReport:
    methods = dict(
        session.execute(
            select(ItemResult.method, func.count())
            .where(ItemResult.job_id == job.id)
            .group_by(ItemResult.method)
        ).all()
    )
    histogram = [0] * HISTOGRAM_BINS
    for confidence in session.scalars(
        select(ItemResult.confidence)
        .where(ItemResult.job_id == job.id)
        .execution_options(yield_per=STREAM_ROWS)
    ):
        histogram[min(int(confidence * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
    statuses = dict(
        session.execute(
            select(Assignment.status, func.count())
            .where(
                Assignment.job_id == job.id,
                Assignment.status.in_(
                    [
                        AssignmentStatus.submitted,
                        AssignmentStatus.approved,
                        AssignmentStatus.rejected,
                    ]
                ),
            )
            .group_by(Assignment.status)
        ).all()
    )
    return JobReport(
        job.id,
        {str(k): int(v) for k, v in methods.items()},
        job_agreement(session, job),
        histogram,
        {s.value: int(statuses.get(s, 0)) for s in tracking.FINISHED},
        tracking.stats_of_job(session, job.id),
        gold.annotators_out_of_gold(session, job),
        prelabel_use(session, job),
    )


def prelabel_use(session: Session, job: Job) -> PrelabelUse:
    """Answers to the job's pre-labelled regular items, and how many kept the pre-label as it
    was (compared as `rules.canonical` forms, as identical answers are), streamed once."""
    rows = session.execute(
        select(Answer.annotator_id, Answer.value, Item.prelabel)
        .join(Item, Item.id == Answer.item_id)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .where(
            Answer.job_id == job.id,
            Item.is_gold.is_(False),
            Item.prelabel.is_not(None),
            Assignment.status.in_([AssignmentStatus.submitted, AssignmentStatus.approved]),
        )
        .execution_options(yield_per=STREAM_ROWS)
    )
    per: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for annotator_id, value, prelabel in rows:
        counts = per[annotator_id]
        counts[0] += 1
        counts[1] += rules.canonical(value) == rules.canonical(prelabel)
    return PrelabelUse(
        job.show_prelabels,
        sum(c[0] for c in per.values()),
        sum(c[1] for c in per.values()),
        {k: (c[0], c[1]) for k, c in sorted(per.items())},
    )


def job_agreement(session: Session, job: Job) -> Agreement:
    """Agreement per control and overall, over the regular items with two or more answers:
    percent agreement (the share of agreeing answer pairs per item, averaged), Fleiss' kappa for
    categorical controls and Krippendorff's alpha (interval for rating and number, nominal
    otherwise; whole answers compared as canonical JSON). The overall figure is the mean percent
    agreement over the controls. Rejected work is left out, as exports leave it out."""
    answers = session.execute(
        select(Answer.item_id, Answer.value)
        .join(Item, Item.id == Answer.item_id)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .where(
            Answer.job_id == job.id,
            Item.is_gold.is_(False),
            Assignment.status.in_(COUNTED_WORK),
        )
        .order_by(Answer.item_id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    schema = LabelSchema.model_validate(job.label_schema)
    interval = {c.name for c in schema.controls if isinstance(c, RatingControl | NumberControl)}
    categorical = {c.name for c in schema.controls if isinstance(c, RatingControl)} | {
        c.name for c in schema.controls if isinstance(c, ChoicesControl) and not c.multiple
    }
    given: dict[str, list[tuple[int, Any]]] = defaultdict(list)  # control → (item, value)
    items = 0
    for n, values in enumerate(_by_item(answers)):
        if len(values) < 2:
            continue
        items += 1
        for value in values:
            for control, answer in value.items():
                given[control].append((n, answer))
    controls = {
        name: _control_agreement(pairs, name in categorical, name in interval)
        for name, pairs in sorted(given.items())
    }
    per_control = {name: c.percent_agreement for name, c in controls.items()}
    known = [v for v in per_control.values() if v is not None]
    overall = round(sum(known) / len(known), 6) if known else None
    return Agreement("percent_agreement", overall, per_control, items, controls)


def _control_agreement(
    pairs: list[tuple[int, Any]], categorical: bool, interval: bool
) -> ControlAgreement:
    encoder: VoteEncoder[int, bytes] = VoteEncoder()
    votes = encoder.encode(
        (item, n, orjson.dumps(rules.canonical(value), option=orjson.OPT_SORT_KEYS))
        for n, (item, value) in enumerate(pairs)
    )
    units = [item for item, _ in pairs]
    if interval and all(isinstance(v, int | float) for _, v in pairs):
        alpha = krippendorff_alpha(units, [float(v) for _, v in pairs], Level.interval)
        level = Level.interval
    else:
        alpha = krippendorff_alpha(units, votes.labels, Level.nominal)
        level = Level.nominal
    counted = votes.vote_counts().sum(axis=1) >= 2
    return ControlAgreement(
        percent_agreement=_finite(percent_agreement(votes)),
        fleiss_kappa=_finite(fleiss_kappa(votes)) if categorical else None,
        krippendorff_alpha=_finite(alpha),
        alpha_level=level.value,
        items=int(counted.sum()),
    )


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def _by_item(rows: Iterable[Any]) -> Iterable[list[dict[str, Any]]]:
    current: int | None = None
    values: list[dict[str, Any]] = []
    for item_id, value in rows:
        if item_id != current and values:
            yield values
            values = []
        current = item_id
        if isinstance(value, dict):
            values.append(value)
    if values:
        yield values


# --- an admin's evidence page --------------------------------------------------------------------


def recent_decisions(session: Session, annotator_id: int, limit: int = 100) -> list[ReviewDecision]:
    """The latest review decisions about the annotator's work, newest first."""
    return list(
        session.scalars(
            select(ReviewDecision)
            .where(ReviewDecision.annotator_id == annotator_id)
            .order_by(ReviewDecision.id.desc())
            .limit(limit)
        )
    )
