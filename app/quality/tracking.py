"""Accuracy and speed tracking: each annotator's figures, overall, per job and per skill,
computed in batch and stored in `annotator_stats` (never on the claim/submit path).

One refresh takes a set of annotators and reads all their finished work in a few set-wise
queries (assignments; answers with their item's gold flag and consensus; review decisions; rule
actions that open a window; the jobs' skills and thresholds), then computes in Python, per job:

- gold accuracy: the mean score of graded gold answers;
- agreement with consensus: the share of answers on items with a consensus (`item_results`,
  whatever method the job uses) equal to it on every control;
- approval rate: approved / (approved + rejected);
- median active seconds per task (the measured active time assignments record);
- fast submits: tasks whose seconds from claim to submit were below the job's floor (`rules`
  says why wall time), and their share of the tasks of jobs that have a floor;
- the longest run of identical answers;
- reputation over the scope (`reputation`), from the same observations, decayed by age.

A skill's figures sum the jobs requiring that skill; overall sums every job. The stats rows are
rewritten whole (one refresh of an annotator at a time), the rule counters the check at submit
reads (`RuleCounters`) overwritten, and the annotator's computed reputation and tier stored.
What the rules need beyond the stored figures (the windows, the fast submits, runs long enough
to flag) is handed to `enforcement` in memory.

Which annotators are refreshed: those with work submitted or reviewed since their last refresh,
and everyone else once a day (decay moves reputation even without new work, and consensus
reached later changes agreement). Work committed while a refresh runs is counted by the next
one: a refresh counts work up to a minute before it started.

Measured on this project's 2-core machine while it was shared (load average ~8): refreshing 200
annotators with 500 answers each (100,000 answers, one job, overlap 3) took 3.3–3.8 s on SQLite
and 6–8 s on PostgreSQL, and recording the 12,327 rule actions that data called for 1.3–4 s.
Reading JSON as text parsed with orjson, and each answer's time from its assignment, took the
SQLite refresh from 6.5–12 s to that; the drivers' conversions had been most of it. A background
job holds SQLite's one writer while it runs, so the periodic refresh goes 100 annotators a run.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Text, cast, delete, func, or_, select, text, union
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core.settings import Settings
from app.models.consensus import ItemResult
from app.models.jobs import Answer, Assignment, AssignmentStatus, Item, Job
from app.models.quality import (
    ActionStatus,
    AnnotatorReputation,
    AnnotatorStats,
    QualityAction,
    QualityRule,
    ReviewDecision,
    ReviewSource,
    RuleCounters,
    StatsScope,
)
from app.quality import job_settings, reputation, rules
from app.quality.reputation import Evidence

FINISHED = job_settings.FINISHED
COMMIT_MARGIN = timedelta(minutes=1)
RECOMPUTE_AFTER = timedelta(days=1)
PERSON_SOURCES = (ReviewSource.client, ReviewSource.appeal)
ANNOTATOR_LOCK_SPACE = 0x7E55_0A11  # advisory locks of annotator refreshes: (space, annotator id)


# --- one scope's figures -------------------------------------------------------------------------


@dataclass
class Tally:
    """Running sums of one annotator's work over one scope."""

    tasks: int = 0
    gold_answers: int = 0
    gold_score_sum: float = 0.0
    consensus_answers: int = 0
    agreements: int = 0
    approved: int = 0
    rejected: int = 0
    active_seconds: list[int] = field(default_factory=list)
    timed_tasks: int = 0
    fast_submits: int = 0
    longest_run: int = 0
    last_active_at: datetime | None = None
    evidence: Evidence = field(default_factory=Evidence)

    def merge(self, other: Tally) -> None:
        self.tasks += other.tasks
        self.gold_answers += other.gold_answers
        self.gold_score_sum += other.gold_score_sum
        self.consensus_answers += other.consensus_answers
        self.agreements += other.agreements
        self.approved += other.approved
        self.rejected += other.rejected
        self.active_seconds.extend(other.active_seconds)
        self.timed_tasks += other.timed_tasks
        self.fast_submits += other.fast_submits
        self.longest_run = max(self.longest_run, other.longest_run)
        if other.last_active_at is not None and (
            self.last_active_at is None or other.last_active_at > self.last_active_at
        ):
            self.last_active_at = other.last_active_at
        self.evidence.merge(other.evidence)

    def row(
        self,
        annotator_id: int,
        scope: StatsScope,
        key: str,
        prior_strength: float,
        now: datetime,
    ) -> AnnotatorStats:
        return AnnotatorStats(
            annotator_id=annotator_id,
            scope=scope,
            scope_key=key,
            tasks=self.tasks,
            gold_answers=self.gold_answers,
            gold_accuracy=_share(self.gold_score_sum, self.gold_answers),
            consensus_answers=self.consensus_answers,
            agreement=_share(self.agreements, self.consensus_answers),
            approved=self.approved,
            rejected=self.rejected,
            approval_rate=_share(self.approved, self.approved + self.rejected),
            median_active_seconds=(
                float(statistics.median(self.active_seconds)) if self.active_seconds else None
            ),
            timed_tasks=self.timed_tasks,
            fast_submits=self.fast_submits,
            fast_share=_share(self.fast_submits, self.timed_tasks),
            longest_identical_run=self.longest_run,
            reputation=round(reputation.smoothed_reputation(self.evidence, prior_strength), 6),
            last_active_at=self.last_active_at,
            computed_at=now,
        )


def _share(part: float, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


# --- what the rules need of one annotator's work on one job --------------------------------------


@dataclass(frozen=True)
class FastSubmit:
    assignment_id: int
    seconds: float


@dataclass
class JobWork:
    """One annotator's work on one job: the figures, and the rules' window numbers."""

    job_id: int
    tally: Tally = field(default_factory=Tally)
    window_gold_answers: int = 0
    window_gold_score_sum: float = 0.0
    window_gold: list[dict[str, Any]] = field(default_factory=list)  # evidence, for admins
    removal_window_after: int = 0  # answer id: the gold-accuracy window starts after it
    all_answers_run: rules.Run = field(default_factory=rules.Run)
    window_keys: list[tuple[int, str]] = field(default_factory=list)  # (answer id, answer key)
    long_runs: list[rules.LongRun] = field(default_factory=list)  # to flag, in the window
    run: rules.Run = field(default_factory=rules.Run)  # the current run, as a submit counts it
    fast: list[FastSubmit] = field(default_factory=list)
    last_answer_id: int = 0

    def close(self, t: rules.Thresholds) -> None:
        """After the last answer: the runs to flag in the window, and the current run."""
        self.long_runs, self.run = rules.long_runs(self.window_keys, t.identical_run_length)


@dataclass
class Refreshed:
    """The outcome of refreshing one annotator, for `enforcement`."""

    annotator_id: int
    jobs: dict[int, JobWork]
    thresholds: dict[int, rules.Thresholds]
    overall: Tally


# --- the refresh ---------------------------------------------------------------------------------


def due_annotators(
    session: Session, now: datetime, *, after: int = 0, limit: int = 200
) -> list[int]:
    """Annotators whose figures are out of date, by id after `after`: work submitted or
    reviewed since their last refresh (or never refreshed), or last refreshed a day ago."""
    rep = AnnotatorReputation
    submitted = (
        select(Assignment.annotator_id.label("annotator_id"))
        .outerjoin(rep, rep.annotator_id == Assignment.annotator_id)
        .where(Assignment.submitted_at.is_not(None), Assignment.annotator_id > after)
        .group_by(Assignment.annotator_id, rep.computed_through, rep.computed_at)
        .having(
            or_(
                rep.computed_through.is_(None),
                func.max(Assignment.submitted_at) >= rep.computed_through,
                rep.computed_at < now - RECOMPUTE_AFTER,
            )
        )
    )
    reviewed = (
        select(ReviewDecision.annotator_id.label("annotator_id"))
        .join(rep, rep.annotator_id == ReviewDecision.annotator_id)
        .where(
            ReviewDecision.created_at >= rep.computed_through, ReviewDecision.annotator_id > after
        )
    )
    both = union(submitted, reviewed).subquery()
    return list(
        session.scalars(select(both.c.annotator_id).order_by(both.c.annotator_id).limit(limit))
    )


def refresh_annotators(
    session: Session, settings: Settings, annotator_ids: Sequence[int], now: datetime
) -> list[Refreshed]:
    """Recompute and store the figures (overall, per job, per skill), the rule counters and the
    computed reputation and tier of these annotators from all their finished work; write their
    effective reputation and tier to their profiles. Returns what `enforcement` needs."""
    ids = sorted(set(annotator_ids))
    if not ids:
        return []
    _lock_annotators(session, ids)
    through = now - COMMIT_MARGIN
    assignments = session.execute(
        select(
            Assignment.id,
            Assignment.annotator_id,
            Assignment.job_id,
            Assignment.status,
            Assignment.claimed_at,
            Assignment.submitted_at,
            Assignment.active_seconds,
        )
        .where(Assignment.annotator_id.in_(ids), Assignment.status.in_(FINISHED))
        .order_by(Assignment.id)
    ).all()
    job_ids = {a.job_id for a in assignments}
    job_settings.refresh_derived_floors(session, settings, job_ids, now)
    thresholds = job_settings.thresholds_for_jobs(session, settings, job_ids)
    skills = _skills_of_jobs(session, job_ids)
    person_reviewed = _reviewed_by_a_person(session, ids)
    windows = _rule_windows(session, ids)
    # JSON as text, parsed here with orjson, and the answer's time from its assignment: the
    # drivers' JSON and timestamp conversions were most of a refresh's time (measured below).
    answers = session.execute(
        select(
            Answer.id,
            Answer.assignment_id,
            Answer.annotator_id,
            Answer.job_id,
            cast(Answer.value, Text).label("value"),
            Answer.score,
            Item.is_gold,
            cast(ItemResult.answer, Text).label("consensus"),
            ItemResult.confidence,
        )
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .join(Item, Item.id == Answer.item_id)
        .outerjoin(ItemResult, ItemResult.item_id == Answer.item_id)
        .where(Answer.annotator_id.in_(ids), Assignment.status.in_(FINISHED))
        .order_by(Answer.id)
    ).all()

    half_life = settings.quality_reputation_half_life_days
    weights = {
        a.id: reputation.decay((now - a.submitted_at).total_seconds(), half_life)
        for a in assignments
    }
    work: dict[int, dict[int, JobWork]] = defaultdict(dict)
    for a in assignments:
        job = work[a.annotator_id].setdefault(a.job_id, JobWork(a.job_id))
        _count_assignment(job, a, thresholds[a.job_id], a.id in person_reviewed, weights[a.id])
    for answer in answers:
        job = work[answer.annotator_id].setdefault(answer.job_id, JobWork(answer.job_id))
        removal_from, identical_from = windows.get((answer.annotator_id, answer.job_id), (0, 0))
        job.removal_window_after = removal_from
        _count_answer(job, answer, removal_from, identical_from, weights[answer.assignment_id])

    for jobs in work.values():
        for job in jobs.values():
            job.close(thresholds[job.job_id])
    session.execute(delete(AnnotatorStats).where(AnnotatorStats.annotator_id.in_(ids)))
    prior = settings.quality_reputation_prior_strength
    tiers = reputation.TierThresholds.of(settings)
    out = []
    for annotator_id in ids:
        jobs = work.get(annotator_id, {})
        overall = Tally()
        by_skill: dict[str, Tally] = defaultdict(Tally)
        for job_id, job in sorted(jobs.items()):
            overall.merge(job.tally)
            for slug in skills.get(job_id, ()):
                by_skill[slug].merge(job.tally)
            session.add(job.tally.row(annotator_id, StatsScope.job, str(job_id), prior, now))
            write_counters(
                session,
                annotator_id,
                job_id,
                gold_answers=job.window_gold_answers,
                gold_score_sum=job.window_gold_score_sum,
                run=job.run,
                last_answer_id=job.last_answer_id,
                now=now,
            )
        for slug, tally in sorted(by_skill.items()):
            session.add(tally.row(annotator_id, StatsScope.skill, slug, prior, now))
        overall_row = overall.row(annotator_id, StatsScope.overall, "", prior, now)
        session.add(overall_row)
        reputation.record_computed(
            session,
            annotator_id,
            reputation=overall_row.reputation,
            tier=reputation.tier_for(overall_row.reputation, overall.tasks, tiers),
            volume=overall.tasks,
            evidence=overall.evidence.as_dict(),
            through=through,
            now=now,
        )
        out.append(Refreshed(annotator_id, jobs, thresholds, overall))
    session.flush()
    return out


def _lock_annotators(session: Session, ids: Sequence[int]) -> None:
    """One refresh of an annotator at a time (their rows are rewritten whole): on PostgreSQL a
    transaction-level advisory lock per annotator, taken in id order so two refreshes cannot
    deadlock; on SQLite the write transaction is the lock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for annotator_id in ids:
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :id)"),
            {"space": ANNOTATOR_LOCK_SPACE, "id": annotator_id % 2**31},
        )


def write_counters(
    session: Session,
    annotator_id: int,
    job_id: int,
    *,
    gold_answers: int,
    gold_score_sum: float,
    run: rules.Run,
    last_answer_id: int,
    now: datetime,
) -> None:
    """Insert or overwrite an annotator's rule counters on a job in one statement (a refresh and
    a submit's check may write the same row)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values = {
        "gold_answers": gold_answers,
        "gold_score_sum": gold_score_sum,
        "run_key": run.key,
        "run_length": run.length,
        "last_answer_id": last_answer_id,
        "updated_at": now,
    }
    session.execute(
        insert(RuleCounters)
        .values(annotator_id=annotator_id, job_id=job_id, **values)
        .on_conflict_do_update(index_elements=["annotator_id", "job_id"], set_=values)
    )


def ensure_counters(session: Session, annotator_id: int, job_id: int, *, now: datetime) -> None:
    """Create the annotator's empty rule counters on a job unless they exist."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(RuleCounters)
        .values(
            annotator_id=annotator_id,
            job_id=job_id,
            gold_answers=0,
            gold_score_sum=0.0,
            run_key=None,
            run_length=0,
            last_answer_id=0,
            updated_at=now,
        )
        .on_conflict_do_nothing()
    )


def _count_assignment(
    job: JobWork, a: Any, t: rules.Thresholds, by_a_person: bool, weight: float
) -> None:
    tally = job.tally
    tally.tasks += 1
    tally.active_seconds.append(a.active_seconds)
    if tally.last_active_at is None or a.submitted_at > tally.last_active_at:
        tally.last_active_at = a.submitted_at
    if a.status is AssignmentStatus.approved:
        tally.approved += 1
    elif a.status is AssignmentStatus.rejected:
        tally.rejected += 1
    if by_a_person and a.status in (AssignmentStatus.approved, AssignmentStatus.rejected):
        tally.evidence.add("approval", float(a.status is AssignmentStatus.approved), weight)
    if t.speed_floor_seconds is not None and t.speed_floor_seconds > 0:
        seconds = (a.submitted_at - a.claimed_at).total_seconds()
        fast = rules.fast_submit(seconds, t.speed_floor_seconds) is not None
        tally.timed_tasks += 1
        tally.fast_submits += fast
        tally.evidence.add("speed", float(not fast), weight)
        if fast:
            job.fast.append(FastSubmit(a.id, seconds))


def _count_answer(
    job: JobWork, answer: Any, removal_from: int, identical_from: int, weight: float
) -> None:
    tally = job.tally
    value = orjson.loads(answer.value)
    job.last_answer_id = answer.id
    if answer.score is not None:
        tally.gold_answers += 1
        tally.gold_score_sum += answer.score
        tally.evidence.add("gold", answer.score, weight)
        if answer.id > removal_from:
            job.window_gold_answers += 1
            job.window_gold_score_sum += answer.score
            job.window_gold.append(
                {
                    "assignment_id": answer.assignment_id,
                    "answer_id": answer.id,
                    "score": answer.score,
                }
            )
    if not answer.is_gold and answer.consensus is not None:
        agrees = rules.same_answer(value, orjson.loads(answer.consensus))
        tally.consensus_answers += 1
        tally.agreements += agrees
        tally.evidence.add("agreement", _agreement_outcome(agrees, answer.confidence), weight)
    # Identical answers: the longest run ever, and the answers in the rule's window.
    key = rules.answer_key(value)
    job.all_answers_run = job.all_answers_run.then(key)
    tally.longest_run = max(tally.longest_run, job.all_answers_run.length)
    if answer.id > identical_from:
        job.window_keys.append((answer.id, key))


def _agreement_outcome(agrees: bool, confidence: float | None) -> float:
    """An answer's agreement evidence for reputation: the consensus model's probability that the
    answer is right, read off the item's consensus confidence (that of the consensus when the
    answer equals it, the rest otherwise). So what the fit learnt of the annotators feeds their
    reputation: an answer that agrees with a sure consensus counts nearly 1, one that agrees with
    a 1-1 split 1/2 (honest confidence), one alone on its item its annotator's fitted skill."""
    sure = 1.0 if confidence is None else min(max(float(confidence), 0.0), 1.0)
    return sure if agrees else 1.0 - sure


def _skills_of_jobs(session: Session, job_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """The skill slugs each job requires."""
    return {
        job_id: tuple(sorted({r["skill"] for r in required or []}))
        for job_id, required in session.execute(
            select(Job.id, Job.required_skills).where(Job.id.in_(sorted(set(job_ids))))
        )
    }


def _reviewed_by_a_person(session: Session, annotator_ids: Sequence[int]) -> set[int]:
    """Assignments whose latest review decision was a person's (a client, or an admin on
    appeal), not the auto-approval."""
    latest: dict[int, ReviewSource] = {}
    for assignment_id, source in session.execute(
        select(ReviewDecision.assignment_id, ReviewDecision.source)
        .where(ReviewDecision.annotator_id.in_(annotator_ids))
        .order_by(ReviewDecision.id)
    ):
        latest[assignment_id] = source
    return {a for a, source in latest.items() if source in PERSON_SOURCES}


def gold_window(
    session: Session, annotator_id: int, job_id: int, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """The annotator's gold answers on the job in the gold-accuracy window, as a removal's
    evidence: (where the window starts, the last `limit` of them: assignment id, answer id and
    score, as the batch refresh records them)."""
    removal_from, _ = _rule_windows(session, [annotator_id]).get((annotator_id, job_id), (0, 0))
    rows = session.execute(
        select(Answer.assignment_id, Answer.id, Answer.score)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .where(
            Answer.annotator_id == annotator_id,
            Answer.job_id == job_id,
            Answer.score.is_not(None),
            Answer.id > removal_from,
            Assignment.status.in_(FINISHED),
        )
        .order_by(Answer.id.desc())
        .limit(limit)
    ).all()
    return removal_from, [
        {"assignment_id": a, "answer_id": i, "score": score} for a, i, score in reversed(rows)
    ]


def _rule_windows(
    session: Session, annotator_ids: Sequence[int]
) -> dict[tuple[int, int], tuple[int, int]]:
    """(annotator, job) → where the rules' windows start, as answer ids: the gold-accuracy
    window after the last removal an admin reversed, the identical-answers window after the
    last identical-answers flag."""
    windows: dict[tuple[int, int], tuple[int, int]] = {}
    for annotator_id, job_id, rule, status, evidence in session.execute(
        select(
            QualityAction.annotator_id,
            QualityAction.job_id,
            QualityAction.rule,
            QualityAction.status,
            QualityAction.evidence,
        ).where(
            QualityAction.annotator_id.in_(annotator_ids),
            QualityAction.rule.in_([QualityRule.gold_accuracy, QualityRule.identical_answers]),
        )
    ):
        if job_id is None:
            continue
        last = int(evidence.get("last_answer_id", 0))
        removal_from, identical_from = windows.get((annotator_id, job_id), (0, 0))
        if rule is QualityRule.gold_accuracy and status is ActionStatus.reversed:
            removal_from = max(removal_from, last)
        elif rule is QualityRule.identical_answers:
            identical_from = max(identical_from, last)
        windows[(annotator_id, job_id)] = (removal_from, identical_from)
    return windows


# --- reading the figures -------------------------------------------------------------------------


def stats_of(session: Session, annotator_id: int) -> list[AnnotatorStats]:
    """The annotator's stored figures: overall first, then per job, then per skill."""
    order = {StatsScope.overall: 0, StatsScope.job: 1, StatsScope.skill: 2}
    rows = session.scalars(
        select(AnnotatorStats).where(AnnotatorStats.annotator_id == annotator_id)
    )
    return sorted(rows, key=lambda r: (order[r.scope], _key_order(r.scope_key)))


def _key_order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (0, key)


def stats_of_job(session: Session, job_id: int) -> list[AnnotatorStats]:
    """Every annotator's figures on one job, by annotator id."""
    return list(
        session.scalars(
            select(AnnotatorStats)
            .where(AnnotatorStats.scope == StatsScope.job, AnnotatorStats.scope_key == str(job_id))
            .order_by(AnnotatorStats.annotator_id)
        )
    )
