"""Request and response bodies for review, appeals, figures, reputation, rule actions and
reports. Three audiences, three shapes where they differ: annotators see their own figures,
reasons and numbers (never evidence ids, never a gold answer, never who reviewed); clients see
their own jobs' annotators by pseudonym; admins see everything, evidence included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.inputs import Int64, RequestBody
from app.models.jobs import AssignmentStatus, Tier
from app.models.quality import (
    ActionKind,
    ActionStatus,
    AppealKind,
    AppealStatus,
    QualityRule,
    ReviewSource,
    StatsScope,
)
from app.quality import reports
from app.quality.reports import PrelabelUse

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]
Message = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=5000)]
AssignmentIds = Annotated[list[Int64], Field(min_length=1, max_length=500)]
Share = Annotated[float, Field(ge=0, le=1)]


# --- review --------------------------------------------------------------------------------------


class ApproveRequest(RequestBody):
    assignment_ids: AssignmentIds
    reason: Reason | None = Field(default=None, description="Optional note shown to annotators")


class RejectRequest(RequestBody):
    assignment_ids: AssignmentIds
    reason: Reason = Field(description="Why: shown to the annotators, who may appeal")


class ReviewResult(BaseModel):
    status: AssignmentStatus = Field(description="what the assignments are now")
    changed: list[int]
    unchanged: list[int] = Field(description="already so: left as they were")


class ReviewAnswer(BaseModel):
    item_id: int
    external_id: str | None
    is_gold: bool
    score: float | None = Field(description="gold items: the graded score")
    answer: dict[str, Any]


class LatestReview(BaseModel):
    status: AssignmentStatus
    source: ReviewSource
    reason: str | None
    at: datetime


class ReviewItem(BaseModel):
    """A submitted assignment of your job, for review."""

    id: int
    annotator: str = Field(description="pseudonymous annotator id, as in exports")
    task_id: int
    status: AssignmentStatus
    claimed_at: datetime
    submitted_at: datetime | None
    active_seconds: int
    seconds_to_submit: float | None = Field(description="wall time from claim to submit")
    gold_score: float | None
    answers: list[ReviewAnswer]
    review: LatestReview | None
    flags: list[QualityRule] = Field(description="rules that flagged this assignment")


class ReviewPage(BaseModel):
    items: list[ReviewItem]
    next_cursor: int | None


# --- figures, reputation, tiers ------------------------------------------------------------------


class StatsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    scope: StatsScope
    key: str = Field(
        validation_alias="scope_key",
        description="the job id (scope job), the skill slug (scope skill), or ''",
    )
    tasks: int
    gold_answers: int
    gold_accuracy: float | None
    consensus_answers: int
    agreement: float | None = Field(description="share of answers equal to the consensus")
    approved: int
    rejected: int
    approval_rate: float | None
    median_active_seconds: float | None
    timed_tasks: int = Field(description="tasks of jobs with a speed floor")
    fast_submits: int
    fast_share: float | None
    longest_identical_run: int
    reputation: float
    last_active_at: datetime | None
    computed_at: datetime


class NeedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    what: Literal["reputation", "tasks"]
    required: float
    actual: float
    met: bool


class NextTierOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tier: Tier
    needs: list[NeedOut]


class OverrideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tier: Tier | None
    reputation: float | None
    reason: str
    created_at: datetime
    cleared_at: datetime | None


class AdminOverrideOut(OverrideOut):
    created_by_id: int
    cleared_by_id: int | None


class QualityOut(BaseModel):
    """An annotator's standing: what eligibility uses, where it comes from, what is next."""

    annotator_id: int
    reputation: float = Field(description="in force: the override's if set, else computed")
    tier: Tier
    computed_reputation: float | None
    computed_tier: Tier | None
    finished_tasks: int
    computed_at: datetime | None
    override: OverrideOut | None
    next_tier: NextTierOut | None
    stats: list[StatsOut]

    @classmethod
    def of(cls, view: reports.AnnotatorQuality) -> QualityOut:
        # A mapper, not from_attributes: it flattens the standing and its computed part.
        s = view.standing
        return cls(
            annotator_id=s.annotator_id,
            reputation=s.reputation,
            tier=s.tier,
            computed_reputation=s.computed.reputation if s.computed else None,
            computed_tier=s.computed.tier if s.computed else None,
            finished_tasks=s.computed.volume if s.computed else 0,
            computed_at=s.computed.computed_at if s.computed else None,
            override=OverrideOut.model_validate(s.override) if s.override else None,
            next_tier=NextTierOut.model_validate(view.next_tier) if view.next_tier else None,
            stats=[StatsOut.model_validate(r) for r in view.stats],
        )


class OverrideRequest(RequestBody):
    tier: Tier | None = None
    reputation: Share | None = None
    reason: Reason

    @model_validator(mode="after")
    def _something(self) -> OverrideRequest:
        if self.tier is None and self.reputation is None:
            raise ValueError("set tier, reputation or both")
        return self


# --- rule actions --------------------------------------------------------------------------------


class ActionOut(BaseModel):
    """A rule's action as the annotator it concerns sees it: the reason, the thresholds and
    their own numbers."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    rule: QualityRule
    kind: ActionKind
    status: ActionStatus
    job_id: int | None
    assignment_id: int | None
    reason: str
    thresholds: dict[str, Any]
    numbers: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class AdminActionOut(ActionOut):
    """An action with its evidence (ids of the assignments and answers behind the numbers)."""

    annotator_id: int
    evidence: dict[str, Any]
    ban_id: int | None
    resolved_by_id: int | None


class ActionPage(BaseModel):
    items: list[AdminActionOut]
    next_cursor: int | None


class MyActionPage(BaseModel):
    items: list[ActionOut]
    next_cursor: int | None


class ActionDecision(RequestBody):
    note: Reason = Field(description="why: kept on the action, shown to the annotator")


# --- review history and appeals ------------------------------------------------------------------


class DecisionOut(BaseModel):
    """A review decision about your work (who made it is not shown)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    assignment_id: int
    job_id: int
    old_status: AssignmentStatus
    new_status: AssignmentStatus
    source: ReviewSource
    reason: str | None
    created_at: datetime


class AdminDecisionOut(DecisionOut):
    actor_id: int | None


class DecisionPage(BaseModel):
    items: list[DecisionOut]
    next_cursor: int | None


class AppealCreate(RequestBody):
    assignment_id: Int64
    kind: AppealKind = Field(
        description="`rejection`: the client's rejection; `gold`: the score of the control "
        "items (on jobs that showed it)"
    )
    message: Message


class AppealOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    assignment_id: int
    job_id: int
    kind: AppealKind
    message: str
    status: AppealStatus
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    gold_score_before: float | None
    gold_score_after: float | None


class AdminAppealOut(AppealOut):
    annotator_id: int
    resolved_by_id: int | None
    original_scores: dict[str, Any] | None


class AppealPage(BaseModel):
    items: list[AdminAppealOut]
    next_cursor: int | None


class AppealResolution(RequestBody):
    outcome: Literal["upheld", "overturned"]
    note: Reason = Field(description="shown to the annotator")
    gold_score: Share | None = Field(
        default=None,
        description="gold appeals, overturned: the score the control items get instead "
        "(omitted: the gold judgment is cleared and no longer counts)",
    )


# --- per-job rules and the client's report -------------------------------------------------------


class JobRules(RequestBody):
    """A job's own rule thresholds; null fields follow the platform defaults."""

    speed_floor_seconds: float | None = Field(
        default=None,
        ge=0,
        le=86_400,
        description="seconds per task below which a submit is flagged (0: no flags); null: "
        "derived from the job's submits",
    )
    removal_gold_accuracy: Share | None = Field(
        default=None, description="remove annotators below this gold accuracy (0: never)"
    )
    removal_min_gold_answers: int | None = Field(default=None, ge=1, le=100_000)
    identical_run_length: int | None = Field(default=None, ge=2, le=100_000)


class JobRulesOut(JobRules):
    effective: dict[str, Any] = Field(description="the thresholds in force, defaults filled in")
    derived_floor_seconds: float | None
    derived_from_submits: int


class ControlAgreementOut(BaseModel):
    percent_agreement: float | None
    fleiss_kappa: float | None = Field(description="categorical controls (choices, rating)")
    krippendorff_alpha: float | None
    alpha_level: str = Field(description="interval for rating and number controls, else nominal")
    items: int = Field(description="items with two or more answers to this control")


class AgreementOut(BaseModel):
    metric: str
    value: float | None
    per_control: dict[str, float | None]
    items: int = Field(description="items with two or more answers")
    controls: dict[str, ControlAgreementOut] = Field(
        description="per control: percent agreement, Fleiss' kappa, Krippendorff's alpha"
    )


class HistogramBin(BaseModel):
    low: float
    high: float
    items: int


class ReportAnnotator(BaseModel):
    annotator: str = Field(description="pseudonymous annotator id, as in exports")
    tasks: int
    gold_answers: int
    gold_accuracy: float | None
    agreement: float | None
    approval_rate: float | None
    median_active_seconds: float | None
    fast_share: float | None
    longest_identical_run: int
    computed_at: datetime


class PrelabelKept(BaseModel):
    answers: int = Field(description="answers to regular items that have a pre-label")
    kept_unchanged: int = Field(description="of those, answers equal to the pre-label")
    kept_rate: float | None = Field(description="kept_unchanged / answers (null: no answers)")

    @staticmethod
    def figures(answers: int, kept: int) -> dict[str, Any]:
        return {
            "answers": answers,
            "kept_unchanged": kept,
            "kept_rate": round(kept / answers, 6) if answers else None,
        }


class AnnotatorPrelabelKept(PrelabelKept):
    annotator: str = Field(description="pseudonymous annotator id (as in exports)")


class PrelabelUseOut(PrelabelKept):
    """How often annotators kept a pre-label unchanged (rejected work left out). A rate near 1
    while pre-labels are shown may mean the pre-labels are good, or that they are being
    accepted unread: compare with the gold accuracy."""

    shown: bool = Field(description="whether the job shows pre-labels to annotators")
    annotators: list[AnnotatorPrelabelKept]

    @classmethod
    def of(cls, use: PrelabelUse, pseudonym: Callable[[int], str]) -> PrelabelUseOut:
        return cls(
            shown=use.shown,
            **cls.figures(use.answers, use.kept),
            annotators=[
                AnnotatorPrelabelKept(annotator=pseudonym(annotator), **cls.figures(n, kept))
                for annotator, (n, kept) in use.per_annotator.items()
            ],
        )


class JobReportOut(BaseModel):
    job_id: int
    methods: dict[str, int] = Field(description="consensus method → items it decided")
    agreement: AgreementOut
    confidence_histogram: list[HistogramBin]
    assignments: dict[str, int] = Field(description="submitted, approved, rejected")
    annotators: list[ReportAnnotator]
    annotators_out_of_gold: int = Field(
        description="Annotators who have been shown every gold item of the job (nobody sees one "
        "twice, so they can only take tasks without gold)"
    )
    prelabels: PrelabelUseOut


# --- admin ---------------------------------------------------------------------------------------


class EvidenceOut(BaseModel):
    """Everything about one annotator's quality, for an admin."""

    annotator_id: int
    email: str
    display_name: str
    account_status: str
    quality: QualityOut
    reputation_evidence: dict[str, Any] | None = Field(
        description="decayed sums per kind of evidence behind the computed reputation"
    )
    overrides: list[AdminOverrideOut]
    actions: list[AdminActionOut] = Field(description="the latest 500, newest first")
    appeals: list[AdminAppealOut]
    recent_decisions: list[AdminDecisionOut]


class RefreshAccepted(BaseModel):
    run_id: int
    status_url: str
