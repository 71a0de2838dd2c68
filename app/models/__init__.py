"""All ORM classes, one module per domain; importing this package registers them all
(Alembic's env imports it for autogenerate)."""

from app.models.accounts import ApiToken, Invite, Role, User, UserStatus
from app.models.background import (
    BackgroundRun,
    OutboxJob,
    ProcessKind,
    RunState,
    SchedulerTick,
    WorkerHeartbeat,
)
from app.models.base import Base

__all__ = [
    "ApiToken",
    "BackgroundRun",
    "Base",
    "Invite",
    "OutboxJob",
    "ProcessKind",
    "Role",
    "RunState",
    "SchedulerTick",
    "User",
    "UserStatus",
    "WorkerHeartbeat",
]
