"""Admins' overviews of the people on the platform: annotators with reputation, tier, accuracy,
speed and open flags (sortable, filterable, paged by offset since the order is the caller's), and
clients with their balance and escrow; and a client's view of the appeals on their jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.core.pagination import PageParams, page_of, paginate
from app.models.accounts import Role, User, UserStatus
from app.models.jobs import Tier
from app.models.qualification import NEUTRAL_REPUTATION, AnnotatorProfile
from app.models.quality import ActionStatus, AnnotatorStats, Appeal, QualityAction, StatsScope
from payouts import reports

MAX_OFFSET = 1_000_000


class AnnotatorSort(StrEnum):
    id = "id"
    reputation = "reputation"
    tier = "tier"
    accuracy = "accuracy"
    speed = "speed"  # median active seconds per task: fastest first
    open_flags = "open_flags"
    tasks = "tasks"


@dataclass(frozen=True)
class AnnotatorRow:
    id: int
    email: str
    display_name: str
    status: UserStatus
    reputation: float
    tier: Tier
    gold_accuracy: float | None
    median_active_seconds: float | None
    tasks: int
    open_flags: int


@dataclass(frozen=True)
class AnnotatorFilter:
    tier: Tier | None = None
    min_reputation: float | None = None
    max_reputation: float | None = None
    has_open_flags: bool | None = None
    status: UserStatus | None = None


def list_annotators(
    session: Session,
    *,
    sort: AnnotatorSort,
    descending: bool,
    where: AnnotatorFilter,
    offset: int,
    limit: int,
) -> tuple[list[AnnotatorRow], int | None]:
    """A page of annotators in the caller's order (ties by id), and the next offset (None at
    the end). Figures are the last refresh's (`tracking`); open flags count open rule actions."""
    flags = (
        select(QualityAction.annotator_id, func.count().label("n"))
        .where(QualityAction.status == ActionStatus.open)
        .group_by(QualityAction.annotator_id)
        .subquery()
    )
    reputation = func.coalesce(AnnotatorProfile.reputation, NEUTRAL_REPUTATION)
    tier = func.coalesce(AnnotatorProfile.tier, Tier.entry.value)
    tier_rank = case({Tier.entry.value: 0, Tier.mid.value: 1, Tier.expert.value: 2}, value=tier)
    open_flags = func.coalesce(flags.c.n, 0)
    tasks = func.coalesce(AnnotatorStats.tasks, 0)
    stmt = (
        select(
            User.id,
            User.email,
            User.display_name,
            User.status,
            reputation.label("reputation"),
            tier.label("tier"),
            AnnotatorStats.gold_accuracy,
            AnnotatorStats.median_active_seconds,
            tasks.label("tasks"),
            open_flags.label("open_flags"),
        )
        .outerjoin(AnnotatorProfile, AnnotatorProfile.user_id == User.id)
        .outerjoin(
            AnnotatorStats,
            (AnnotatorStats.annotator_id == User.id)
            & (AnnotatorStats.scope == StatsScope.overall)
            & (AnnotatorStats.scope_key == ""),
        )
        .outerjoin(flags, flags.c.annotator_id == User.id)
        .where(User.role == Role.annotator)
    )
    if where.tier is not None:
        stmt = stmt.where(tier == where.tier.value)
    if where.min_reputation is not None:
        stmt = stmt.where(reputation >= where.min_reputation)
    if where.max_reputation is not None:
        stmt = stmt.where(reputation <= where.max_reputation)
    if where.has_open_flags is not None:
        stmt = stmt.where(open_flags > 0 if where.has_open_flags else open_flags == 0)
    if where.status is not None:
        stmt = stmt.where(User.status == where.status)
    key = {
        AnnotatorSort.id: User.id,
        AnnotatorSort.reputation: reputation,
        AnnotatorSort.tier: tier_rank,
        AnnotatorSort.accuracy: AnnotatorStats.gold_accuracy,
        AnnotatorSort.speed: AnnotatorStats.median_active_seconds,
        AnnotatorSort.open_flags: open_flags,
        AnnotatorSort.tasks: tasks,
    }[sort]
    # Unknown figures (never refreshed) last either way.
    unknown_last = case((key.is_(None), 1), else_=0)
    order = key.desc() if descending else key.asc()
    stmt = stmt.order_by(unknown_last, order, User.id).offset(offset).limit(limit + 1)
    rows = [
        AnnotatorRow(
            id=r.id,
            email=r.email,
            display_name=r.display_name,
            status=r.status,
            reputation=float(r.reputation),
            tier=Tier(r.tier),
            gold_accuracy=r.gold_accuracy,
            median_active_seconds=r.median_active_seconds,
            tasks=int(r.tasks),
            open_flags=int(r.open_flags),
        )
        for r in session.execute(stmt)
    ]
    if len(rows) > limit:
        return rows[:limit], offset + limit
    return rows, None


@dataclass(frozen=True)
class ClientRow:
    id: int
    email: str
    display_name: str
    status: UserStatus
    currency: str
    available_micros: int
    escrow_micros: int


def list_clients(
    session: Session, params: PageParams, currency: str
) -> tuple[list[ClientRow], int | None]:
    """A page of clients by id with their available balance and what their jobs hold in
    escrow (from the ledger)."""
    stmt = select(User).where(User.role == Role.client)
    users = list(session.scalars(paginate(stmt, User.id, params)))
    users, cursor = page_of(users, params, [u.id for u in users])
    out = []
    for user in users:
        balance = reports.client_balance(session, user.id, currency)
        out.append(
            ClientRow(
                user.id,
                user.email,
                user.display_name,
                user.status,
                currency,
                balance.available_micros,
                balance.escrow_micros,
            )
        )
    return out, cursor


def appeals_on_jobs(
    session: Session, job_ids: Sequence[int], params: PageParams
) -> tuple[list[Appeal], int | None]:
    """A page of the appeals on these jobs, oldest first."""
    if not job_ids:
        return [], None
    stmt = select(Appeal).where(Appeal.job_id.in_(list(job_ids)))
    rows = list(session.scalars(paginate(stmt, Appeal.id, params)))
    return page_of(rows, params, [a.id for a in rows])
