"""All ORM classes, one module per domain; importing this package registers them all
(Alembic's env imports it for autogenerate)."""

from app.models.accounts import ApiToken, Invite, Role, User, UserStatus
from app.models.base import Base
from app.models.jobs import (
    Answer,
    Assignment,
    AssignmentStatus,
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
from app.models.qualification import (
    AnnotatorProfile,
    AttemptQuestion,
    AttemptStatus,
    GrantSource,
    JobBan,
    QualificationAttempt,
    QualificationQuestion,
    QualificationTest,
    Skill,
    SkillGrant,
)

__all__ = [
    "AnnotatorProfile",
    "Answer",
    "ApiToken",
    "Assignment",
    "AssignmentStatus",
    "AttemptQuestion",
    "AttemptStatus",
    "Base",
    "GrantSource",
    "Invite",
    "Item",
    "ItemResult",
    "Job",
    "JobBan",
    "JobStatus",
    "PricingMode",
    "QualificationAttempt",
    "QualificationQuestion",
    "QualificationTest",
    "Role",
    "Skill",
    "SkillGrant",
    "Task",
    "TaskItem",
    "TaskOrder",
    "TaskStatus",
    "Tier",
    "User",
    "UserStatus",
]
