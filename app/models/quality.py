"""Judging work and people: review decisions, appeals, per-annotator statistics, computed
reputation and its overrides, rule actions with their evidence, and per-job rule settings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, IdMixin, str_enum
from app.models.jobs import AssignmentStatus, Json, Tier


class ReviewSource(StrEnum):
    """Who changed an assignment's review status."""

    client = "client"  # the job's client (or an admin acting on the job)
    auto = "auto"  # nobody reviewed it in time: auto-approved by the scheduler
    appeal = "appeal"  # an admin overturned a judgment on appeal


class ReviewDecision(IdMixin, Base):
    """One change of an assignment's review status (submitted → approved / rejected, rejected →
    approved), with who made it and why. The assignment's own status is the current state; these
    rows are its history."""

    __tablename__ = "review_decisions"

    assignment_id: Mapped[int] = mapped_column(BigId, ForeignKey("assignments.id"), index=True)
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"))
    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    old_status: Mapped[AssignmentStatus] = mapped_column(str_enum(AssignmentStatus, "old_status"))
    new_status: Mapped[AssignmentStatus] = mapped_column(str_enum(AssignmentStatus, "new_status"))
    source: Mapped[ReviewSource] = mapped_column(str_enum(ReviewSource, "review_source"))
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))  # None: system
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_review_decisions_annotator_id_id", "annotator_id", "id"),
        Index("ix_review_decisions_created_at", "created_at"),
    )


class AppealKind(StrEnum):
    rejection = "rejection"  # the client rejected the assignment
    gold = "gold"  # the assignment's gold items were scored against the answer key


class AppealStatus(StrEnum):
    open = "open"
    upheld = "upheld"  # the judgment stands
    overturned = "overturned"  # the judgment was reversed


class Appeal(IdMixin, Base):
    """An annotator's appeal of one judgment of one assignment; at most one per judgment."""

    __tablename__ = "appeals"

    assignment_id: Mapped[int] = mapped_column(BigId, ForeignKey("assignments.id"))
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"))
    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    kind: Mapped[AppealKind] = mapped_column(str_enum(AppealKind, "appeal_kind"))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[AppealStatus] = mapped_column(str_enum(AppealStatus, "appeal_status"))
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(Text)  # the admin's note, shown to the annotator
    # Gold appeals: the assignment's gold score before and after the ruling (None after: cleared),
    # and each gold answer's original score, so the record survives a re-score.
    gold_score_before: Mapped[float | None] = mapped_column(Float)
    gold_score_after: Mapped[float | None] = mapped_column(Float)
    original_scores: Mapped[dict[str, Any] | None] = mapped_column(Json)

    __table_args__ = (
        UniqueConstraint("assignment_id", "kind"),
        Index("ix_appeals_status_id", "status", "id"),
    )


class StatsScope(StrEnum):
    overall = "overall"
    job = "job"  # scope_key: the job id
    skill = "skill"  # scope_key: the skill slug (work on jobs requiring that skill)


class AnnotatorStats(Base):
    """An annotator's accuracy, agreement, review and speed figures over one scope, as of the
    last batch refresh (`tracking`). Never written on the claim/submit path."""

    __tablename__ = "annotator_stats"

    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    scope: Mapped[StatsScope] = mapped_column(str_enum(StatsScope, "stats_scope"), primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    tasks: Mapped[int] = mapped_column(Integer)  # submitted, approved or rejected assignments
    gold_answers: Mapped[int] = mapped_column(Integer)
    gold_accuracy: Mapped[float | None] = mapped_column(Float)  # mean gold score
    consensus_answers: Mapped[int] = mapped_column(Integer)  # answers on items with a consensus
    agreement: Mapped[float | None] = mapped_column(Float)  # share equal to the consensus
    approved: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    approval_rate: Mapped[float | None] = mapped_column(Float)
    median_active_seconds: Mapped[float | None] = mapped_column(Float)
    timed_tasks: Mapped[int] = mapped_column(Integer)  # tasks of jobs with a speed floor
    fast_submits: Mapped[int] = mapped_column(Integer)
    fast_share: Mapped[float | None] = mapped_column(Float)
    longest_identical_run: Mapped[int] = mapped_column(Integer)
    reputation: Mapped[float] = mapped_column(Float)  # smoothed and decayed, over this scope
    last_active_at: Mapped[datetime | None]
    computed_at: Mapped[datetime]

    __table_args__ = (Index("ix_annotator_stats_scope_scope_key", "scope", "scope_key"),)


class AnnotatorReputation(Base):
    """The computed reputation and tier of an annotator and the evidence behind them. What
    eligibility reads stays in `annotator_profiles`: the override if an admin set one, else
    these values."""

    __tablename__ = "annotator_reputations"

    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    reputation: Mapped[float] = mapped_column(Float)
    tier: Mapped[Tier] = mapped_column(str_enum(Tier, "tier"))
    volume: Mapped[int] = mapped_column(Integer)  # finished tasks
    evidence: Mapped[dict[str, Any]] = mapped_column(Json)  # decayed sums per component
    # Work submitted or reviewed before this time is counted (a little before the refresh began,
    # so a transaction committing during the refresh is picked up by the next one).
    computed_through: Mapped[datetime]
    computed_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("reputation >= 0 AND reputation <= 1", name="reputation"),)


class ReputationOverride(IdMixin, Base):
    """An admin's override of an annotator's tier and/or reputation, with the reason. The
    latest one not cleared is in force; cleared ones stay on record."""

    __tablename__ = "reputation_overrides"

    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    tier: Mapped[Tier | None] = mapped_column(str_enum(Tier, "tier"))
    reputation: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    cleared_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint("reputation IS NULL OR (reputation >= 0 AND reputation <= 1)", name="rep"),
        CheckConstraint("tier IS NOT NULL OR reputation IS NOT NULL", name="something"),
    )


class QualityRule(StrEnum):
    gold_accuracy = "gold_accuracy"  # removal from a job
    fast_submit = "fast_submit"  # flag
    identical_answers = "identical_answers"  # flag
    repeated_removals = "repeated_removals"  # suspension proposal


class ActionKind(StrEnum):
    removal = "removal"  # banned from the job (a job ban with the rule as its reason)
    flag = "flag"  # for an admin to look at; nothing is enforced
    suspension_proposal = "suspension_proposal"  # an admin confirms (suspends) or dismisses


class ActionStatus(StrEnum):
    open = "open"  # in force (removal), waiting for an admin (flag, proposal)
    confirmed = "confirmed"  # an admin agreed (a confirmed proposal suspended the account)
    reversed = "reversed"  # an admin undid it (ban lifted, flag withdrawn, account reactivated)


class QualityAction(IdMixin, Base):
    """What a rule did about an annotator, and why: the rule, its thresholds, the annotator's
    numbers that triggered it (shown to them) and the evidence behind those (ids of the
    assignments and answers; admins only)."""

    __tablename__ = "quality_actions"

    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    job_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("jobs.id"))
    assignment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("assignments.id"))
    rule: Mapped[QualityRule] = mapped_column(str_enum(QualityRule, "quality_rule"))
    kind: Mapped[ActionKind] = mapped_column(str_enum(ActionKind, "action_kind"))
    status: Mapped[ActionStatus] = mapped_column(str_enum(ActionStatus, "action_status"))
    reason: Mapped[str] = mapped_column(Text)
    thresholds: Mapped[dict[str, Any]] = mapped_column(Json)
    numbers: Mapped[dict[str, Any]] = mapped_column(Json)
    evidence: Mapped[dict[str, Any]] = mapped_column(Json)
    ban_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("job_bans.id"))
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # One fast-submit flag per assignment (rows without an assignment do not collide).
        UniqueConstraint("rule", "assignment_id"),
        Index("ix_quality_actions_annotator_id_id", "annotator_id", "id"),
        Index("ix_quality_actions_status_kind_id", "status", "kind", "id"),
    )


class RuleCounters(Base):
    """The running numbers the rules read at submit, per annotator and job, within the rules'
    window (gold answers since the last reversed removal; the current run of identical answers
    since the last identical-answers flag). The batch rewrites them from the answers; a submit
    may advance them in between."""

    __tablename__ = "quality_rule_counters"

    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"), primary_key=True)
    gold_answers: Mapped[int] = mapped_column(Integer)
    gold_score_sum: Mapped[float] = mapped_column(Float)
    run_key: Mapped[str | None] = mapped_column(String(64))
    run_length: Mapped[int] = mapped_column(Integer)
    last_answer_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class JobQualitySettings(Base):
    """A job's own rule thresholds (null: the platform default) and the speed floor derived
    from its submits when the client set none."""

    __tablename__ = "job_quality_settings"

    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"), primary_key=True)
    speed_floor_seconds: Mapped[float | None] = mapped_column(Float)
    removal_gold_accuracy: Mapped[float | None] = mapped_column(Float)
    removal_min_gold_answers: Mapped[int | None] = mapped_column(Integer)
    identical_run_length: Mapped[int | None] = mapped_column(Integer)
    derived_floor_seconds: Mapped[float | None] = mapped_column(Float)
    derived_from_submits: Mapped[int] = mapped_column(Integer, default=0)
    derived_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    updated_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
