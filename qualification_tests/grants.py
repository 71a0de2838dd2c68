"""Skill grants: an annotator's skill levels, earned by passing a test or given by an admin.

A grant is never deleted: revoking records who and why, and an expired grant stays on record, so
an annotator's history (and the decisions behind eligibility) can always be read back. Services
flush, never commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.errors import NotFound, ValidationFailed
from app.models.qualification import GrantSource, Skill, SkillGrant
from qualification_tests import schemas
from qualification_tests.annotators import get_annotator
from qualification_tests.errors import GrantAlreadyRevoked
from qualification_tests.skills import get_skill


def grant_skill(
    session: Session, annotator_id: int, body: schemas.GrantCreate, *, admin_id: int
) -> SkillGrant:
    """An admin grants a skill level by hand, with a reason (and optionally an expiry). 404 for
    an unknown annotator or skill, 422 for a level above the skill's maximum or an expiry that
    has passed."""
    get_annotator(session, annotator_id)
    skill = get_skill(session, body.skill)
    if body.level > skill.max_level:
        raise ValidationFailed(
            "Level above the skill's maximum",
            errors=[{"pointer": "#/level", "detail": f"levels are 1..{skill.max_level}"}],
        )
    now = utcnow()
    if body.expires_at is not None and body.expires_at <= now:
        raise ValidationFailed(
            "The grant would already be expired",
            errors=[{"pointer": "#/expires_at", "detail": "must be in the future"}],
        )
    grant = SkillGrant(
        annotator_id=annotator_id,
        skill_id=skill.id,
        level=body.level,
        source=GrantSource.admin,
        granted_by_id=admin_id,
        reason=body.reason,
        granted_at=now,
        expires_at=body.expires_at,
    )
    session.add(grant)
    session.flush()
    return grant


def revoke_grant(session: Session, grant_id: int, reason: str, *, admin_id: int) -> SkillGrant:
    """Revoke a grant, recording who and why; the row stays. 409 if already revoked."""
    grant = session.scalar(select(SkillGrant).where(SkillGrant.id == grant_id).with_for_update())
    if grant is None:
        raise NotFound("No such grant")
    if grant.revoked_at is not None:
        raise GrantAlreadyRevoked("This grant is already revoked")
    grant.revoked_at = utcnow()
    grant.revoked_by_id = admin_id
    grant.revoke_reason = reason
    session.flush()
    return grant


def list_grants(session: Session, annotator_id: int) -> list[tuple[SkillGrant, str]]:
    """Every grant of the annotator (revoked and expired too), newest first, with skill slugs."""
    return [
        (grant, slug)
        for grant, slug in session.execute(
            select(SkillGrant, Skill.slug)
            .join(Skill, Skill.id == SkillGrant.skill_id)
            .where(SkillGrant.annotator_id == annotator_id)
            .order_by(SkillGrant.id.desc())
        ).all()
    ]


def grants_in_force(session: Session, annotator_id: int) -> list[tuple[SkillGrant, str]]:
    """The annotator's grants in force (not revoked, not expired), newest first, with slugs."""
    now = utcnow()
    return [
        (grant, slug)
        for grant, slug in list_grants(session, annotator_id)
        if grant.revoked_at is None and (grant.expires_at is None or grant.expires_at > now)
    ]
