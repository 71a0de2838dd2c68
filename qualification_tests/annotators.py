"""Annotators as admins and clients see them: who counts as an annotator, their reputation and
tier (the profile), and their bans from jobs.

Profiles and bans are decisions people make about an annotator (until reputation is computed);
eligibility (`qualification_tests.eligibility`) reads them. Nothing is deleted: a lifted ban stays
on record with who lifted it. Services flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.errors import NotFound, ValidationFailed
from app.models.accounts import Role, User
from app.models.jobs import Job, Tier
from app.models.qualification import NEUTRAL_REPUTATION, AnnotatorProfile, JobBan
from qualification_tests import schemas


def get_annotator(session: Session, user_id: int) -> User:
    """The annotator with this id; 404 for unknown ids and for users who are not annotators."""
    user = session.get(User, user_id)
    if user is None or user.role is not Role.annotator:
        raise NotFound("No such annotator")
    return user


# --- profiles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """An annotator's reputation and tier; `updated_at` is None while the defaults apply."""

    annotator_id: int
    reputation: float
    tier: Tier
    updated_at: datetime | None


def get_profile(session: Session, annotator_id: int) -> Profile:
    """The annotator's reputation and tier (defaults 0.5 and entry when never set); 404 for
    anyone who is not an annotator."""
    get_annotator(session, annotator_id)
    profile = session.get(AnnotatorProfile, annotator_id)
    if profile is None:
        return Profile(annotator_id, NEUTRAL_REPUTATION, Tier.entry, None)
    return Profile(annotator_id, profile.reputation, profile.tier, profile.updated_at)


def set_profile(
    session: Session, annotator_id: int, body: schemas.ProfileUpdate, *, admin_id: int
) -> Profile:
    """Set reputation and/or tier (an admin's decision until reputation is computed)."""
    get_annotator(session, annotator_id)
    profile = session.get(AnnotatorProfile, annotator_id, with_for_update=True)
    if profile is None:
        profile = AnnotatorProfile(
            user_id=annotator_id, reputation=NEUTRAL_REPUTATION, tier=Tier.entry
        )
        session.add(profile)
    if body.reputation is not None:
        profile.reputation = body.reputation
    if body.tier is not None:
        profile.tier = body.tier
    profile.updated_at = utcnow()
    profile.updated_by_id = admin_id
    session.flush()
    return get_profile(session, annotator_id)


# --- bans -------------------------------------------------------------------------------------


def ban_from_job(session: Session, job: Job, body: schemas.BanCreate, *, by_id: int) -> JobBan:
    """Ban an annotator from `job` (until a time, or for good). A ban already in force is
    replaced (lifted and a new one recorded), so the history shows every decision. The body
    is checked before the annotator is looked up: whoever the id names, a bad body gets the
    same 422 and an id that is not an annotator's the same 404, so a client learns nothing
    about other users' roles."""
    now = utcnow()
    if body.until is not None and body.until <= now:
        raise ValidationFailed(
            "The ban would already be over",
            errors=[{"pointer": "#/until", "detail": "must be in the future"}],
        )
    get_annotator(session, body.annotator_id)
    for ban in _bans_in_force(session, job.id, body.annotator_id, now):
        ban.lifted_at, ban.lifted_by_id = now, by_id
    ban = JobBan(
        job_id=job.id,
        annotator_id=body.annotator_id,
        until=body.until,
        reason=body.reason,
        created_by_id=by_id,
        created_at=now,
    )
    session.add(ban)
    session.flush()
    return ban


def lift_ban(session: Session, job: Job, annotator_id: int, *, by_id: int) -> list[JobBan]:
    """Lift the annotator's bans in force on `job`; 404 if there is none."""
    bans = _bans_in_force(session, job.id, annotator_id, utcnow())
    if not bans:
        raise NotFound("This annotator is not banned from this job")
    now = utcnow()
    for ban in bans:
        ban.lifted_at, ban.lifted_by_id = now, by_id
    session.flush()
    return bans


def list_bans(session: Session, job: Job) -> list[JobBan]:
    """Every ban on `job`, lifted and expired ones too, oldest first."""
    return list(session.scalars(select(JobBan).where(JobBan.job_id == job.id).order_by(JobBan.id)))


def _bans_in_force(session: Session, job_id: int, annotator_id: int, now: datetime) -> list[JobBan]:
    return [
        ban
        for ban in session.scalars(
            select(JobBan)
            .where(
                JobBan.job_id == job_id,
                JobBan.annotator_id == annotator_id,
                JobBan.lifted_at.is_(None),
            )
            .with_for_update()
        )
        if ban.until is None or ban.until > now
    ]
