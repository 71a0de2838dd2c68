"""The skill catalogue: what annotators can be qualified in, and at which levels.

Admins manage the catalogue; jobs name skills they require (`check_required_skills`), tests grant
them. Services flush, never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import NotFound, ValidationFailed
from app.models.qualification import Skill
from qualification_tests import schemas
from qualification_tests.errors import SkillExists


def create_skill(session: Session, body: schemas.SkillCreate) -> Skill:
    """Add a skill to the catalogue; 409 if the slug is taken."""
    if session.scalar(select(Skill.id).where(Skill.slug == body.slug)) is not None:
        raise SkillExists(
            f"Skill {body.slug!r} already exists",
            errors=[{"pointer": "#/slug", "detail": "already exists"}],
        )
    skill = Skill(
        slug=body.slug, name=body.name, description=body.description, max_level=body.max_level
    )
    session.add(skill)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise SkillExists(f"Skill {body.slug!r} already exists") from None
    return skill


def list_skills(session: Session) -> list[Skill]:
    """The whole catalogue, by slug."""
    return list(session.scalars(select(Skill).order_by(Skill.slug)))


def get_skill(session: Session, slug: str) -> Skill:
    """The skill with this slug; 404 otherwise."""
    skill = session.scalar(select(Skill).where(Skill.slug == slug))
    if skill is None:
        raise NotFound(f"No skill {slug!r}")
    return skill


def update_skill(session: Session, skill: Skill, body: schemas.SkillUpdate) -> Skill:
    """Change the fields given (name, description, max level); the slug never changes."""
    for name in ("name", "description", "max_level"):
        value = getattr(body, name)
        if value is not None:
            setattr(skill, name, value)
    session.flush()
    return skill


def check_required_skills(
    session: Session,
    requirements: Sequence[Mapping[str, Any]],
    *,
    pointer: str = "#/required_skills",
) -> None:
    """Raise 422 naming every requirement whose skill slug is not in the catalogue or whose level
    is above the skill's maximum. Called by the jobs service when a job's skills are set."""
    slugs = {str(r["skill"]) for r in requirements}
    if not slugs:
        return
    max_levels = dict(
        session.execute(select(Skill.slug, Skill.max_level).where(Skill.slug.in_(slugs))).all()
    )
    problems: list[dict[str, Any]] = []
    for index, requirement in enumerate(requirements):
        slug, level = str(requirement["skill"]), int(requirement.get("level", 1))
        if slug not in max_levels:
            problems.append(
                {"pointer": f"{pointer}/{index}/skill", "detail": f"unknown skill {slug!r}"}
            )
        elif level > max_levels[slug]:
            problems.append(
                {
                    "pointer": f"{pointer}/{index}/level",
                    "detail": f"skill {slug!r} has levels 1..{max_levels[slug]}",
                }
            )
    if problems:
        raise ValidationFailed("The job requires skills that do not exist", errors=problems)


def skill_slugs(session: Session, skill_ids: Iterable[int]) -> dict[int, str]:
    """Slug by skill id, for the given ids (one query)."""
    ids = set(skill_ids)
    if not ids:
        return {}
    return dict(session.execute(select(Skill.id, Skill.slug).where(Skill.id.in_(ids))).all())
