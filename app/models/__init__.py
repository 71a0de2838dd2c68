"""All ORM classes, one module per domain; importing this package registers them all
(Alembic's env imports it for autogenerate)."""

from app.models.accounts import ApiToken, Invite, Role, User, UserStatus
from app.models.base import Base
from app.models.jobs import (
    Answer,
    Assignment,
    AssignmentStatus,
    GoldExposure,
    Item,
    ItemResult,
    Job,
    JobStatus,
    PricingMode,
    Task,
    TaskItem,
    TaskOrder,
    TaskStatus,
    Tier,
)

__all__ = [
    "Answer",
    "ApiToken",
    "Assignment",
    "AssignmentStatus",
    "Base",
    "GoldExposure",
    "Invite",
    "Item",
    "ItemResult",
    "Job",
    "JobStatus",
    "PricingMode",
    "Role",
    "Task",
    "TaskItem",
    "TaskOrder",
    "TaskStatus",
    "Tier",
    "User",
    "UserStatus",
]
