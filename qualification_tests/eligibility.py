"""Job eligibility: may this annotator work on this job, and if not, exactly why not.

Used by the annotator job list and by routing (the hot path asks for all active jobs at once), so
the batch form reads everything it needs in a constant number of queries, whatever the number of
jobs, then decides in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.models.jobs import Assignment, AssignmentStatus, Job, JobStatus, Tier
from app.models.qualification import (
    NEUTRAL_REPUTATION,
    AnnotatorProfile,
    JobBan,
    Skill,
    SkillGrant,
)

TIER_RANK = {Tier.entry: 0, Tier.mid: 1, Tier.expert: 2}

# Assignments that still count towards max_tasks_per_annotator (released/expired gave it back).
COUNTED_ASSIGNMENTS = (
    AssignmentStatus.active,
    AssignmentStatus.submitted,
    AssignmentStatus.approved,
    AssignmentStatus.rejected,
)


@dataclass(frozen=True)
class Reason:
    """Why an annotator may not work on a job. `code` is stable (clients of the API switch on
    it); `detail` is for people; `required`/`actual` are the numbers behind the decision."""

    code: str  # job_not_active | banned | missing_skill | skill_level_too_low | skill_expired
    #            | reputation_too_low | tier_too_low | job_full
    detail: str
    skill: str | None = None
    required: Any = None
    actual: Any = None
    until: datetime | None = None


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reasons: list[Reason] = field(default_factory=list)
    # The annotator's tier as the verdict saw it: the pay shown with work uses its multiplier.
    tier: Tier = Tier.entry


@dataclass(frozen=True)
class _GrantView:
    skill: str
    level: int
    client_id: int | None
    expires_at: datetime | None


@dataclass
class AnnotatorFacts:
    """Everything about one annotator that eligibility depends on, for a set of jobs."""

    reputation: float
    tier: Tier
    grants: list[_GrantView]
    bans: dict[int, JobBan]  # job id → the ban in force
    assignment_counts: dict[int, int]  # job id → assignments that count


def load_facts(
    session: Session, annotator_id: int, job_ids: Sequence[int], now: datetime
) -> AnnotatorFacts:
    """Read the annotator's profile, grants, bans and assignment counts: four queries."""
    profile = session.get(AnnotatorProfile, annotator_id)
    grant_rows = session.execute(
        select(Skill.slug, SkillGrant.level, SkillGrant.client_id, SkillGrant.expires_at)
        .join(Skill, Skill.id == SkillGrant.skill_id)
        .where(SkillGrant.annotator_id == annotator_id, SkillGrant.revoked_at.is_(None))
    ).all()
    bans: dict[int, JobBan] = {}
    counts: dict[int, int] = {}
    if job_ids:
        for ban in session.scalars(
            select(JobBan).where(
                JobBan.annotator_id == annotator_id,
                JobBan.job_id.in_(job_ids),
                JobBan.lifted_at.is_(None),
                or_(JobBan.until.is_(None), JobBan.until > now),
            )
        ):
            current = bans.get(ban.job_id)
            # A permanent ban outranks a timed one; of two timed bans the later end counts.
            if current is None or _ban_end(ban) > _ban_end(current):
                bans[ban.job_id] = ban
        counts = dict(
            session.execute(
                select(Assignment.job_id, func.count())
                .where(
                    Assignment.annotator_id == annotator_id,
                    Assignment.job_id.in_(job_ids),
                    Assignment.status.in_(COUNTED_ASSIGNMENTS),
                )
                .group_by(Assignment.job_id)
            ).all()
        )
    return AnnotatorFacts(
        reputation=profile.reputation if profile else NEUTRAL_REPUTATION,
        tier=profile.tier if profile else Tier.entry,
        grants=[_GrantView(*row) for row in grant_rows],
        bans=bans,
        assignment_counts=counts,
    )


def _ban_end(ban: JobBan) -> datetime:
    return ban.until or datetime.max.replace(tzinfo=UTC)


def decide(job: Job, facts: AnnotatorFacts, now: datetime) -> Eligibility:
    """The eligibility of one job from already-loaded facts (no queries). Every failing rule is
    reported, not just the first, so an annotator sees all they would need to change."""
    reasons: list[Reason] = []
    if job.status is not JobStatus.active:
        reasons.append(
            Reason(
                "job_not_active",
                f"The job is {job.status.value}, not active",
                required=JobStatus.active.value,
                actual=job.status.value,
            )
        )
    ban = facts.bans.get(job.id)
    if ban is not None:
        reasons.append(
            Reason(
                "banned",
                f"Banned from this job until {ban.until.isoformat()}: {ban.reason}"
                if ban.until
                else f"Banned from this job: {ban.reason}",
                until=ban.until,
            )
        )
    for requirement in job.required_skills or []:
        reason = _skill_reason(
            requirement["skill"], int(requirement.get("level", 1)), job, facts, now
        )
        if reason is not None:
            reasons.append(reason)
    if job.min_reputation is not None and facts.reputation < job.min_reputation:
        reasons.append(
            Reason(
                "reputation_too_low",
                f"Reputation {facts.reputation:.2f} is below the job's minimum "
                f"{job.min_reputation:.2f}",
                required=job.min_reputation,
                actual=facts.reputation,
            )
        )
    if job.min_tier is not None and TIER_RANK[facts.tier] < TIER_RANK[job.min_tier]:
        reasons.append(
            Reason(
                "tier_too_low",
                f"Tier {facts.tier.value} is below the job's minimum {job.min_tier.value}",
                required=job.min_tier.value,
                actual=facts.tier.value,
            )
        )
    taken = facts.assignment_counts.get(job.id, 0)
    if job.max_tasks_per_annotator is not None and taken >= job.max_tasks_per_annotator:
        reasons.append(
            Reason(
                "job_full",
                f"Already {taken} tasks in this job; the limit per annotator is "
                f"{job.max_tasks_per_annotator}",
                required=job.max_tasks_per_annotator,
                actual=taken,
            )
        )
    return Eligibility(eligible=not reasons, reasons=reasons, tier=facts.tier)


def _skill_reason(
    slug: str, required: int, job: Job, facts: AnnotatorFacts, now: datetime
) -> Reason | None:
    # Grants from a client's private test count only for that client's jobs.
    grants = [
        g
        for g in facts.grants
        if g.skill == slug and (g.client_id is None or g.client_id == job.client_id)
    ]
    valid = [g for g in grants if g.expires_at is None or g.expires_at > now]
    expired = [g for g in grants if g.expires_at is not None and g.expires_at <= now]
    best_valid = max((g.level for g in valid), default=None)
    if best_valid is not None and best_valid >= required:
        return None
    best_expired = max(expired, key=lambda g: (g.level, g.expires_at), default=None)
    if best_expired is not None and (best_valid is None or best_expired.level >= required):
        return Reason(
            "skill_expired",
            f"Skill {slug} level {best_expired.level} expired on "
            f"{best_expired.expires_at.isoformat() if best_expired.expires_at else ''}; "
            f"level {required} is required — retake its test",
            skill=slug,
            required=required,
            actual=best_expired.level,
            until=best_expired.expires_at,
        )
    if best_valid is not None:
        return Reason(
            "skill_level_too_low",
            f"Skill {slug} is at level {best_valid}; level {required} is required",
            skill=slug,
            required=required,
            actual=best_valid,
        )
    return Reason(
        "missing_skill",
        f"Skill {slug} level {required} is required",
        skill=slug,
        required=required,
        actual=None,
    )


def explain_eligibility(
    session: Session, annotator_id: int, job: Job, *, now: datetime | None = None
) -> Eligibility:
    """Whether `annotator_id` may work on `job` now, with every reason if not (see `Reason`).
    Reads only; four queries."""
    return explain_eligibility_for_jobs(session, annotator_id, [job], now=now)[job.id]


def explain_eligibility_for_jobs(
    session: Session, annotator_id: int, jobs: Iterable[Job], *, now: datetime | None = None
) -> dict[int, Eligibility]:
    """`explain_eligibility` for many jobs at once: job id → Eligibility. Issues a constant
    number of queries (four) however many jobs are given; reads only."""
    now = now or utcnow()
    job_list = list(jobs)
    facts = load_facts(session, annotator_id, [j.id for j in job_list], now)
    return {job.id: decide(job, facts, now) for job in job_list}
