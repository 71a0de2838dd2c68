"""Request and response bodies for skills, grants, profiles, bans, tests, attempts and
eligibility. Annotator-facing models have no field that could carry an answer key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.inputs import Int64, RequestBody, Timestamp
from app.models.jobs import PricingMode, Tier
from payouts.schemas import PayOut

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]
Level = Annotated[int, Field(ge=1, le=10)]


# --- skills and grants ------------------------------------------------------------------------


class SkillCreate(RequestBody):
    slug: Slug
    name: Name
    description: str = Field(default="", max_length=10_000)
    max_level: Level = 1


class SkillUpdate(RequestBody):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=10_000)
    max_level: Level | None = None


class SkillOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    description: str
    max_level: int


class GrantCreate(RequestBody):
    skill: Slug
    level: Level = 1
    reason: Reason
    expires_at: Timestamp | None = None


class RevokeRequest(RequestBody):
    reason: Reason


class GrantOut(BaseModel):
    id: int
    annotator_id: int
    skill: str
    level: int
    source: str
    attempt_id: int | None
    scoped_to_client: bool = Field(
        description="Earned on a client's private test: counts only for that client's jobs"
    )
    granted_by_id: int | None
    reason: str | None
    granted_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by_id: int | None
    revoke_reason: str | None


# --- profiles and bans ------------------------------------------------------------------------


class ProfileUpdate(RequestBody):
    reputation: float | None = Field(default=None, ge=0, le=1)
    tier: Tier | None = None


class ProfileOut(BaseModel):
    annotator_id: int
    reputation: float
    tier: Tier
    updated_at: datetime | None


class BanCreate(RequestBody):
    annotator_id: Int64
    until: Timestamp | None = Field(default=None, description="Null: banned for good")
    reason: Reason


class BanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    job_id: int
    annotator_id: int
    until: datetime | None
    reason: str
    created_by_id: int
    created_at: datetime
    lifted_at: datetime | None
    lifted_by_id: int | None


# --- tests (authors' view: includes keys) -----------------------------------------------------


class QuestionCreate(RequestBody):
    payload: dict[str, Any]
    answer_key: dict[str, Any]
    explanation: str | None = Field(default=None, max_length=10_000)
    weight: float = Field(default=1.0, gt=0, le=1000)


class QuestionsCreate(RequestBody):
    questions: list[QuestionCreate] = Field(min_length=1, max_length=1000)


class QuestionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    payload: dict[str, Any]
    answer_key: dict[str, Any]
    explanation: str | None
    weight: float
    retired_at: datetime | None


class _TestSettings(RequestBody):
    instructions: str | None = Field(default=None, max_length=100_000)
    questions_per_attempt: int | None = Field(default=None, ge=1, le=500)
    time_limit_seconds: int | None = Field(default=None, ge=10, le=7 * 86_400)
    passing_score: float | None = Field(default=None, ge=0, le=1)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    retake_cooldown_seconds: int | None = Field(default=None, ge=0, le=365 * 86_400)
    grant_valid_days: int | None = Field(default=None, ge=1, le=3650)
    show_feedback: bool | None = None


class TestCreate(_TestSettings):
    title: Title
    label_schema: dict[str, Any] | str
    skill: Slug
    skill_level: Level = 1
    questions_per_attempt: int = Field(default=10, ge=1, le=500)
    time_limit_seconds: int = Field(default=1800, ge=10, le=7 * 86_400)
    passing_score: float = Field(default=0.8, ge=0, le=1)
    questions: list[QuestionCreate] = Field(default_factory=list, max_length=1000)


class TestUpdate(_TestSettings):
    """Partial update. The schema and the skill granted cannot change (past grants and keys
    depend on them); make a new test instead."""

    title: Title | None = None
    is_active: bool | None = None


class TestOut(BaseModel):
    id: int
    public: bool
    client_id: int | None
    title: str
    instructions: str
    label_schema: dict[str, Any]
    skill: str
    skill_level: int
    questions_per_attempt: int
    time_limit_seconds: int
    passing_score: float
    max_attempts: int | None
    retake_cooldown_seconds: int
    grant_valid_days: int | None
    show_feedback: bool
    is_active: bool
    active_questions: int
    created_at: datetime
    updated_at: datetime | None


class QuestionStats(BaseModel):
    question_id: int
    answered: int
    mean_score: float | None
    share_correct: float | None = Field(description="Share of answers scoring ≥ 0.999")
    retired: bool


class TestStats(BaseModel):
    test_id: int
    attempts: int
    graded: int
    passed: int
    pass_rate: float | None
    mean_score: float | None
    score_histogram: list[int] = Field(
        description="Graded attempts per score decile: [0,0.1), [0.1,0.2) … [0.9,1.0]"
    )
    questions: list[QuestionStats]


class AttemptSummary(BaseModel):
    id: int
    test_id: int
    annotator_id: int
    status: str
    started_at: datetime
    deadline: datetime
    finished_at: datetime | None
    score: float | None
    passed: bool | None
    late: bool


# --- annotator views (never a key) -----------------------------------------------------------

TestState = Literal[
    "never_taken", "in_progress", "passed", "expired", "revoked", "failed", "exhausted"
]


class AvailableTest(BaseModel):
    id: int
    title: str
    instructions: str
    label_schema: dict[str, Any]
    skill: str
    skill_level: int
    questions_per_attempt: int
    time_limit_seconds: int
    passing_score: float
    max_attempts: int | None
    retake_cooldown_seconds: int
    state: TestState
    open_attempt_id: int | None
    passed_until: datetime | None = Field(description="passed: the grant's expiry, null = never")
    retake_after: datetime | None
    attempts_used: int
    attempts_left: int | None = Field(description="null: unlimited")
    can_start: bool


class AttemptQuestionOut(BaseModel):
    question_id: int
    position: int
    payload: dict[str, Any]


class AnswerIn(RequestBody):
    question_id: Int64
    answer: Any


class SubmitRequest(RequestBody):
    answers: list[AnswerIn] = Field(max_length=500)


class QuestionFeedback(BaseModel):
    question_id: int
    position: int
    your_answer: dict[str, Any] | None
    score: float
    correct: bool
    explanation: str | None


class GrantedSkill(BaseModel):
    skill: str
    level: int
    expires_at: datetime | None


class AttemptOut(BaseModel):
    id: int
    test_id: int
    status: str
    started_at: datetime
    deadline: datetime
    finished_at: datetime | None
    questions: list[AttemptQuestionOut]
    score: float | None
    passed: bool | None
    late: bool
    passing_score: float
    skill_granted: GrantedSkill | None
    feedback: list[QuestionFeedback] | None


class MySkill(BaseModel):
    skill: str
    level: int
    expires_at: datetime | None
    scoped_to_client: bool


# --- eligibility ------------------------------------------------------------------------------


class ReasonOut(BaseModel):
    code: str
    detail: str
    skill: str | None = None
    required: Any = None
    actual: Any = None
    until: datetime | None = None


class EligibilityOut(BaseModel):
    job_id: int
    eligible: bool
    reasons: list[ReasonOut]


class AnnotatorJob(BaseModel):
    """What an annotator sees of a job: enough to decide, nothing of the client or the data."""

    id: int
    title: str
    instructions: str
    label_schema: dict[str, Any]
    pricing: dict[str, Any]
    pricing_mode: PricingMode
    items_per_task: int
    lease_seconds: int
    deadline: datetime | None
    required_skills: list[dict[str, Any]]
    min_reputation: float | None
    min_tier: Tier | None
    max_tasks_per_annotator: int | None
    pay: PayOut = Field(description="What a task of this job pays you, before you work on it")
    eligible: bool
    reasons: list[ReasonOut]
