"""Jobs, their items, the microtasks items are split into, assignments and answers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedAtMixin, IdMixin, str_enum

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")


class JobStatus(StrEnum):
    draft = "draft"
    active = "active"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"


class PauseReason(StrEnum):
    paused_by_client = "paused_by_client"
    paused_by_admin = "paused_by_admin"
    client_suspended = "client_suspended"


class PricingMode(StrEnum):
    per_task = "per_task"
    hourly = "hourly"


class TaskOrder(StrEnum):
    """How open tasks of a job are handed out (after job priority)."""

    near_completion = "near_completion"  # tasks closest to their overlap first, then upload order
    upload_order = "upload_order"  # first uploaded, first labeled
    uncertainty = "uncertainty"  # lowest pre-label model score first (active learning)


class Tier(StrEnum):
    entry = "entry"
    mid = "mid"
    expert = "expert"


class TaskStatus(StrEnum):
    open = "open"  # has a free slot: live + done assignments below the overlap target
    full = "full"  # every slot is live or done; a release or expiry reopens it
    complete = "complete"  # reached its overlap target of done assignments
    cancelled = "cancelled"


class AssignmentStatus(StrEnum):
    active = "active"
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    released = "released"


#: The work whose answers count, the one definition used by an item's consensus (online and in
#: refits), agreement and exports: submitted or approved. A rejected assignment's answers do not
#: count (again after its rejection is overturned or the client approves it after all); released
#: and expired work has no answers.
COUNTED_WORK = (AssignmentStatus.submitted, AssignmentStatus.approved)


class Job(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "jobs"

    client_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    label_schema: Mapped[dict[str, Any]] = mapped_column(Json)
    # The Label Studio XML config the schema was converted from, as sent (None for a schema
    # document): exports to Label Studio name its tags, and the client can download it again.
    label_studio_config: Mapped[str | None] = mapped_column(Text)
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus, "job_status"), index=True)
    pricing_mode: Mapped[PricingMode] = mapped_column(str_enum(PricingMode, "pricing_mode"))
    # Micro-units of the platform currency (1 unit = 1,000,000 micros): per task, or per hour.
    rate_micros: Mapped[int] = mapped_column(BigInteger)
    # Pay terms beside the rate (see payouts.pricing): multipliers per tier in basis points
    # (10000 = 1x; a tier not named pays 1x), a bonus for gold accuracy at or above a score,
    # the most active seconds an hourly task pays, and the platform fee fixed at activation.
    tier_multipliers_bps: Mapped[dict[str, int] | None] = mapped_column(Json)
    gold_bonus_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    gold_bonus_min_score: Mapped[float | None] = mapped_column(Float)
    max_seconds_per_task: Mapped[int | None] = mapped_column(Integer)
    platform_fee_bps: Mapped[int | None] = mapped_column(Integer)
    overlap_min: Mapped[int] = mapped_column(Integer)
    overlap_max: Mapped[int] = mapped_column(Integer)
    items_per_task: Mapped[int] = mapped_column(Integer)
    gold_ratio: Mapped[float] = mapped_column(Float, default=0.0)
    required_skills: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    min_reputation: Mapped[float | None] = mapped_column(Float)
    min_tier: Mapped[Tier | None] = mapped_column(str_enum(Tier, "tier"))
    lease_seconds: Mapped[int] = mapped_column(Integer)
    max_tasks_per_annotator: Mapped[int | None] = mapped_column(Integer)
    deadline: Mapped[datetime | None]
    confidence_threshold: Mapped[float | None] = mapped_column(Float)
    # How answers become a consensus (`app.consensus.methods.Method`'s values).
    consensus_method: Mapped[str] = mapped_column(String(40), default="calibrated_dawid_skene")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    task_order: Mapped[TaskOrder] = mapped_column(str_enum(TaskOrder, "task_order"))
    instant_feedback: Mapped[bool] = mapped_column(Boolean, default=False)
    # The job completes by itself once every task is complete (`app.jobs.completion`).
    auto_complete: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Annotators' `next` shows each item's pre-label (`app.routing.prelabels`).
    show_prelabels: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The payload field (CSV column, JSON key) whose value is each imported row's external id;
    # None: a row's `external_id` key, if any.
    external_id_field: Mapped[str | None] = mapped_column(String(255))
    # Who or what paused the job (`PauseReason`); None when it is not paused, or is paused for
    # money (its budget says why). `client_suspended` resumes by an admin only.
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    # Regular items with ids up to here are split into tasks. Imports and splits of a job hold
    # the job's row lock, so item ids of a job commit in order and a watermark is enough.
    split_watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("overlap_min >= 1 AND overlap_max >= overlap_min", name="overlap"),
        CheckConstraint("items_per_task >= 1", name="items_per_task"),
        CheckConstraint("gold_ratio >= 0 AND gold_ratio < 1", name="gold_ratio"),
        CheckConstraint("rate_micros >= 0", name="rate"),
    )


class Item(IdMixin, Base):
    """One row of a client's dataset. Gold items carry a known answer, never shown as such."""

    __tablename__ = "items"

    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"))
    external_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_answer: Mapped[dict[str, Any] | None] = mapped_column(Json)
    prelabel: Mapped[dict[str, Any] | None] = mapped_column(Json)
    prelabel_score: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("job_id", "external_id"),
        Index("ix_items_job_id_is_gold_id", "job_id", "is_gold", "id"),
    )


class Task(IdMixin, CreatedAtMixin, Base):
    """A microtask: 1..k items shown together, needing `overlap_target` accepted answers."""

    __tablename__ = "tasks"

    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"))
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus, "task_status"))
    order_key: Mapped[float] = mapped_column(Float)
    overlap_target: Mapped[int] = mapped_column(Integer)
    live_count: Mapped[int] = mapped_column(Integer, default=0)  # active assignments
    done_count: Mapped[int] = mapped_column(Integer, default=0)  # submitted or approved
    has_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_tasks_job_id_status", "job_id", "status"),
        # The claim query's scan: its predicate is exactly the query's filter, so only tasks with
        # a free slot are in it and the head of each job's queue is one index probe away.
        Index(
            "ix_tasks_claimable",
            "job_id",
            "order_key",
            "id",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        CheckConstraint("live_count >= 0 AND done_count >= 0", name="counts"),
    )


class TaskItem(Base):
    """The items of a task, in the order they are shown."""

    __tablename__ = "task_items"

    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("tasks.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("items.id"), index=True)


class Assignment(IdMixin, Base):
    """One annotator's attempt at one task."""

    __tablename__ = "assignments"

    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("tasks.id"))
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"))
    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    status: Mapped[AssignmentStatus] = mapped_column(
        str_enum(AssignmentStatus, "assignment_status")
    )
    claimed_at: Mapped[datetime]
    lease_expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    active_seconds: Mapped[int] = mapped_column(Integer, default=0)
    gold_score: Mapped[float | None] = mapped_column(Float)
    release_reason: Mapped[str | None] = mapped_column(String(500))
    # SHA-256 of the canonical submitted answers: a repeated submit is compared against it.
    answers_hash: Mapped[str | None] = mapped_column(String(64))
    # When the submit's earning reached the ledger: not at submit (the hot path writes no
    # ledger rows) but by the poster in batches, or by approval or rejection if sooner.
    earning_posted_at: Mapped[datetime | None]
    # The gold item the claim added to this assignment, if any, and its slot among the items
    # shown (tasks split before gold was chosen at claim hold theirs in `task_items` instead).
    gold_item_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("items.id"))
    gold_slot: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        UniqueConstraint("task_id", "annotator_id"),
        Index("ix_assignments_annotator_id_status", "annotator_id", "status"),
        Index("ix_assignments_job_id_status", "job_id", "status"),
        # Lease sweeps look only at live assignments.
        Index(
            "ix_assignments_live_lease",
            "lease_expires_at",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        # The earnings poster's queue: submitted work whose earning is not in the ledger yet.
        Index(
            "ix_assignments_unposted",
            "id",
            postgresql_where=text("submitted_at IS NOT NULL AND earning_posted_at IS NULL"),
            sqlite_where=text("submitted_at IS NOT NULL AND earning_posted_at IS NULL"),
        ),
    )


class GoldExposure(Base):
    """A gold item an annotator has been shown; gold is never shown to the same person twice
    (gold items recur across tasks, and a repeat would give them away)."""

    __tablename__ = "gold_exposures"

    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("items.id"), primary_key=True)


class Answer(IdMixin, Base):
    """One annotator's answer for one item (a submitted assignment has one per task item)."""

    __tablename__ = "answers"

    assignment_id: Mapped[int] = mapped_column(BigId, ForeignKey("assignments.id"), index=True)
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"))
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("items.id"))
    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    value: Mapped[dict[str, Any]] = mapped_column(Json)
    score: Mapped[float | None] = mapped_column(Float)  # gold items: graded at submit
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_answers_item_id", "item_id"),
        Index("ix_answers_job_id_created_at", "job_id", "created_at"),
    )
