"""Skills, skill grants, annotator profiles, job bans, qualification tests and their attempts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedAtMixin, IdMixin, str_enum
from app.models.jobs import Json, Tier

NEUTRAL_REPUTATION = 0.5


class GrantSource(StrEnum):
    test = "test"  # earned by passing a qualification test attempt
    admin = "admin"  # granted by hand, with who and why


class AttemptStatus(StrEnum):
    open = "open"  # questions fixed, deadline running
    graded = "graded"


class Skill(IdMixin, CreatedAtMixin, Base):
    """A named ability with levels 1..max_level, required by jobs and granted by tests/admins."""

    __tablename__ = "skills"

    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    max_level: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (CheckConstraint("max_level >= 1 AND max_level <= 10", name="max_level"),)


class SkillGrant(IdMixin, Base):
    """One grant of a skill level to an annotator. Revocation is recorded, never deleted.

    A grant earned on a client's private test is scoped to that client (`client_id`): it counts
    only towards that client's jobs."""

    __tablename__ = "skill_grants"

    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    skill_id: Mapped[int] = mapped_column(BigId, ForeignKey("skills.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    source: Mapped[GrantSource] = mapped_column(str_enum(GrantSource, "grant_source"))
    attempt_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("qualification_attempts.id"), index=True
    )
    client_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    granted_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    revoke_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_skill_grants_annotator_id_skill_id", "annotator_id", "skill_id"),
        CheckConstraint("level >= 1", name="level"),
    )


class AnnotatorProfile(Base):
    """Stored reputation and tier of an annotator; a missing row means the defaults
    (reputation 0.5, tier entry) until reputation is computed."""

    __tablename__ = "annotator_profiles"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    reputation: Mapped[float] = mapped_column(Float, default=NEUTRAL_REPUTATION)
    tier: Mapped[Tier] = mapped_column(str_enum(Tier, "tier"), default=Tier.entry)
    updated_at: Mapped[datetime]
    updated_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))

    __table_args__ = (CheckConstraint("reputation >= 0 AND reputation <= 1", name="reputation"),)


class JobBan(IdMixin, CreatedAtMixin, Base):
    """An annotator banned from one job, until a time or (until null) for good. Lifting a ban
    records when and by whom; the row stays."""

    __tablename__ = "job_bans"

    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"), index=True)
    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    until: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    lifted_at: Mapped[datetime | None]
    lifted_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))

    __table_args__ = (Index("ix_job_bans_annotator_id_job_id", "annotator_id", "job_id"),)


class QualificationTest(IdMixin, CreatedAtMixin, Base):
    """A bank of questions with answer keys. `client_id` null: a public test made by an admin;
    otherwise private to that client (and the skill it grants counts only for their jobs)."""

    __tablename__ = "qualification_tests"

    client_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    label_schema: Mapped[dict[str, Any]] = mapped_column(Json)
    questions_per_attempt: Mapped[int] = mapped_column(Integer)
    time_limit_seconds: Mapped[int] = mapped_column(Integer)
    passing_score: Mapped[float] = mapped_column(Float)
    max_attempts: Mapped[int | None] = mapped_column(Integer)
    retake_cooldown_seconds: Mapped[int] = mapped_column(Integer, default=0)
    skill_id: Mapped[int] = mapped_column(BigId, ForeignKey("skills.id"), index=True)
    skill_level: Mapped[int] = mapped_column(Integer)
    grant_valid_days: Mapped[int | None] = mapped_column(Integer)
    show_feedback: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("passing_score >= 0 AND passing_score <= 1", name="passing_score"),
        CheckConstraint("questions_per_attempt >= 1", name="questions_per_attempt"),
        CheckConstraint("time_limit_seconds >= 1", name="time_limit"),
    )


class QualificationQuestion(IdMixin, Base):
    """One question of a test's bank. Retired questions stay for past attempts and statistics."""

    __tablename__ = "qualification_questions"

    test_id: Mapped[int] = mapped_column(BigId, ForeignKey("qualification_tests.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    answer_key: Mapped[dict[str, Any]] = mapped_column(Json)
    explanation: Mapped[str | None] = mapped_column(Text)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    retired_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("weight > 0", name="weight"),)


class QualificationAttempt(IdMixin, Base):
    """One annotator's attempt at a test. At most one open attempt per (test, annotator): a
    partial unique index, so concurrent starts cannot both create one."""

    __tablename__ = "qualification_attempts"

    test_id: Mapped[int] = mapped_column(BigId, ForeignKey("qualification_tests.id"))
    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    status: Mapped[AttemptStatus] = mapped_column(str_enum(AttemptStatus, "attempt_status"))
    started_at: Mapped[datetime]
    deadline: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    score: Mapped[float | None] = mapped_column(Float)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    late: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_qualification_attempts_test_id_annotator_id", "test_id", "annotator_id"),
        Index("ix_qualification_attempts_annotator_id", "annotator_id"),
        Index(
            "uq_qualification_attempts_one_open",
            "test_id",
            "annotator_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )


class AttemptQuestion(Base):
    """A question drawn for an attempt, in the order shown, with the answer and its score."""

    __tablename__ = "qualification_attempt_questions"

    attempt_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("qualification_attempts.id"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("qualification_questions.id"), index=True
    )
    answer: Mapped[dict[str, Any] | None] = mapped_column(Json)
    score: Mapped[float | None] = mapped_column(Float)
