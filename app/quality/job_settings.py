"""A job's own rule thresholds (overriding the platform defaults) and its speed floor.

Kept in a table of their own (`job_quality_settings`) rather than on the job: they are the
quality domain's, they may change while the job runs, and a job without a row simply follows
the platform defaults. When the client sets no speed floor, the stats refresh derives one from
the job's latest submits (`rules.derived_floor`) and stores it here, so the check at submit
reads one row instead of working it out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import Settings
from app.models.jobs import Assignment, AssignmentStatus, Job
from app.models.quality import JobQualitySettings
from app.quality import rules

FLOOR_SAMPLE = 1000  # the latest submits a derived floor is computed from
FLOOR_REFRESH = timedelta(minutes=10)  # a derived floor is recomputed at most this often
FINISHED = (AssignmentStatus.submitted, AssignmentStatus.approved, AssignmentStatus.rejected)


def settings_of(session: Session, job_id: int) -> JobQualitySettings | None:
    return session.get(JobQualitySettings, job_id)


def thresholds_for_jobs(
    session: Session, settings: Settings, job_ids: Iterable[int]
) -> dict[int, rules.Thresholds]:
    """The thresholds in force for each job: platform defaults with the job's overrides and
    its speed floor (set by the client, else derived from its submits, else none)."""
    ids = sorted(set(job_ids))
    platform = rules.Thresholds.platform(settings)
    rows = {
        row.job_id: row
        for row in session.scalars(
            select(JobQualitySettings).where(JobQualitySettings.job_id.in_(ids))
        )
    }
    return {job_id: _apply(platform, rows.get(job_id)) for job_id in ids}


def _apply(platform: rules.Thresholds, row: JobQualitySettings | None) -> rules.Thresholds:
    if row is None:
        return platform
    return platform.for_job(
        removal_gold_accuracy=row.removal_gold_accuracy,
        removal_min_gold_answers=row.removal_min_gold_answers,
        identical_run_length=row.identical_run_length,
        speed_floor_seconds=row.speed_floor_seconds,
        derived_floor_seconds=row.derived_floor_seconds,
    )


def set_job_rules(
    session: Session,
    job: Job,
    *,
    speed_floor_seconds: float | None,
    removal_gold_accuracy: float | None,
    removal_min_gold_answers: int | None,
    identical_run_length: int | None,
    by_id: int,
    now: datetime,
) -> JobQualitySettings:
    """Replace the job's overrides (None: the platform default). A speed floor of 0 switches
    fast-submit flags off for the job; so does a removal accuracy of 0 for removals."""
    row = _row(session, job.id, now)
    row.speed_floor_seconds = speed_floor_seconds
    row.removal_gold_accuracy = removal_gold_accuracy
    row.removal_min_gold_answers = removal_min_gold_answers
    row.identical_run_length = identical_run_length
    row.updated_at, row.updated_by_id = now, by_id
    session.flush()
    return row


def _row(session: Session, job_id: int, now: datetime) -> JobQualitySettings:
    row = session.get(JobQualitySettings, job_id, with_for_update=True)
    if row is None:
        row = JobQualitySettings(job_id=job_id, derived_from_submits=0, updated_at=now)
        session.add(row)
    return row


def refresh_derived_floors(
    session: Session, settings: Settings, job_ids: Iterable[int], now: datetime
) -> None:
    """Recompute the derived speed floor of each job (unless done within FLOOR_REFRESH) from the
    seconds, claim to submit, of its latest FLOOR_SAMPLE submits."""
    ids = sorted(set(job_ids))
    rows = {
        row.job_id: row
        for row in session.scalars(
            select(JobQualitySettings).where(JobQualitySettings.job_id.in_(ids))
        )
    }
    for job_id in ids:
        row = rows.get(job_id)
        if row is not None and row.derived_at is not None and now - row.derived_at < FLOOR_REFRESH:
            continue
        seconds = [
            (submitted_at - claimed_at).total_seconds()
            for claimed_at, submitted_at in session.execute(
                select(Assignment.claimed_at, Assignment.submitted_at)
                .where(Assignment.job_id == job_id, Assignment.status.in_(FINISHED))
                .order_by(Assignment.submitted_at.desc())
                .limit(FLOOR_SAMPLE)
            )
            if submitted_at is not None
        ]
        floor = rules.derived_floor(
            seconds, settings.quality_speed_floor_share, settings.quality_speed_floor_min_submits
        )
        if row is None:
            row = _row(session, job_id, now)
        row.derived_floor_seconds, row.derived_from_submits, row.derived_at = (
            floor,
            len(seconds),
            now,
        )
    session.flush()
