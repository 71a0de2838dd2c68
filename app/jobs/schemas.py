"""Request and response bodies for jobs, imports, progress and export."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.consensus.methods import Method
from app.core.inputs import Int32, RequestBody, Timestamp
from app.core.money import format_micros
from app.label_schema.control_base import FieldName
from app.models.jobs import JobStatus, PauseReason, PricingMode, TaskOrder, Tier

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SkillSlug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]


class SkillRequirement(RequestBody):
    model_config = ConfigDict(frozen=True)

    skill: SkillSlug
    level: int = Field(default=1, ge=1, le=10)


class Pricing(RequestBody):
    mode: PricingMode = PricingMode.per_task
    rate_micros: int = Field(
        ge=0,
        le=10**12,
        description="Per task (mode per_task) or per hour of active work (mode hourly), in "
        "micro-units of the platform currency: 50000 = 0.05",
    )
    tier_multipliers_bps: dict[Tier, Annotated[int, Field(ge=0, le=100_000)]] | None = Field(
        default=None,
        description="Pay multiplier per annotator tier in basis points (12000 = 1.2x); tiers "
        "not named pay 1x. Escrow reserves every slot at the highest multiplier",
    )
    gold_bonus_micros: int = Field(
        default=0,
        ge=0,
        le=10**12,
        description="Bonus per assignment whose gold score reaches gold_bonus_min_score",
    )
    gold_bonus_min_score: float | None = Field(
        default=None, ge=0, le=1, description="Gold score that earns the bonus (default 1.0)"
    )
    max_seconds_per_task: int | None = Field(
        default=None,
        ge=1,
        le=7 * 86_400,
        description="Most active seconds one task pays (required for hourly pay)",
    )

    @model_validator(mode="after")
    def _hourly_is_capped(self) -> Pricing:
        if self.mode is PricingMode.hourly and self.max_seconds_per_task is None:
            raise ValueError(
                "hourly pay needs max_seconds_per_task (escrow reserves each task at the cap)"
            )
        return self


class Overlap(RequestBody):
    min: int = Field(default=3, ge=1, le=100)
    max: int | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _max_at_least_min(self) -> Overlap:
        if self.max is None:
            self.max = self.min
        if self.max < self.min:
            raise ValueError("overlap.max must be at least overlap.min")
        return self


class _JobSettings(RequestBody):
    """Fields a client may set at creation and (some of them) change later."""

    instructions: str | None = Field(default=None, max_length=100_000)
    required_skills: list[SkillRequirement] | None = Field(default=None, max_length=20)
    min_reputation: float | None = Field(default=None, ge=0, le=1)
    min_tier: Tier | None = None
    lease_seconds: int | None = Field(default=None, ge=30, le=86_400)
    max_tasks_per_annotator: Int32 | None = Field(default=None, ge=1)
    deadline: Timestamp | None = None
    confidence_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Dynamic overlap: a task whose least confident item is below this after "
        "overlap.min answers gets one more answer at a time, up to overlap.max",
    )
    consensus_method: Method | None = Field(
        default=None,
        description="How answers become a consensus: majority_vote, weighted_vote, dawid_skene "
        "or calibrated_dawid_skene (the default; see the README's aggregation benchmark). "
        "Changing it on a running job refits the job's consensus.",
    )
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    task_order: TaskOrder | None = None
    instant_feedback: bool | None = None
    auto_complete: bool | None = Field(
        default=None,
        description="Complete the job by itself once every task is complete (default true): "
        "the final consensus refit, unspent escrow back to the client, `job.completed` "
        "(`completed_by: automatic`) and `export.ready`. False leaves it active until the "
        "client completes it.",
    )
    show_prelabels: bool | None = Field(
        default=None,
        description="Show annotators each item's pre-label in `next` (as an answer and as "
        "Label Studio `predictions`; default false). A gold item shows only a pre-label "
        "imported with it that differs from its answer key: give gold items pre-labels too, "
        "or regular items with one can be told apart from gold without one.",
    )


class ImageSize(RequestBody):
    """Where each item gives its image size: for shape controls that do not say so themselves
    (a Label Studio config never does)."""

    width_field: FieldName
    height_field: FieldName


EXTERNAL_ID_FIELD = (
    "The dataset column (CSV) or key (JSON) whose value is each row's external id, so "
    "re-uploading a file that carries its own ids (say `sku`) is idempotent; an upload may name "
    "another with `?external_id_field=`. Without one (or naming `external_id` itself), a row's "
    "`external_id` key is its external id. The field stays in the item's payload. A draft's may "
    "change (items imported before keep their ids); null removes it."
)


class JobCreate(_JobSettings):
    title: Title
    label_schema: dict[str, Any] | str = Field(
        description="A label schema document (see docs/label-schema.md) or a Label Studio XML "
        "labeling config (kept: exports to Label Studio name its tags, and "
        "`GET /v1/jobs/{id}/label-studio-config` returns it)"
    )
    image_size: ImageSize | None = Field(
        default=None,
        description="Payload fields holding each item's image size, for the schema's boxes, "
        "polygons and keypoints that name none (without them, an item's original_width and "
        "original_height are used when it has them)",
    )
    pricing: Pricing
    overlap: Overlap = Field(default_factory=Overlap)
    items_per_task: int = Field(default=1, ge=1, le=100)
    gold_ratio: float = Field(default=0.0, ge=0, le=0.5)
    external_id_field: FieldName | None = Field(default=None, description=EXTERNAL_ID_FIELD)


class JobUpdate(_JobSettings):
    """Partial update. Schema, pricing, items per task, gold ratio and the external id field
    change only in draft."""

    title: Title | None = None
    label_schema: dict[str, Any] | str | None = None
    pricing: Pricing | None = None
    overlap: Overlap | None = None
    items_per_task: int | None = Field(default=None, ge=1, le=100)
    gold_ratio: float | None = Field(default=None, ge=0, le=0.5)
    external_id_field: FieldName | None = Field(default=None, description=EXTERNAL_ID_FIELD)


class JobOut(BaseModel):
    id: int
    client_id: int
    title: str
    instructions: str
    label_schema: dict[str, Any]
    status: JobStatus
    pause_reason: PauseReason | None = Field(
        description="Who or what paused the job (null when not paused, or paused for money: "
        "see its budget); `client_suspended` resumes by an admin only"
    )
    pricing: dict[str, Any]
    overlap: dict[str, int]
    items_per_task: int
    gold_ratio: float
    required_skills: list[dict[str, Any]]
    min_reputation: float | None
    min_tier: Tier | None
    lease_seconds: int
    max_tasks_per_annotator: int | None
    deadline: datetime | None
    confidence_threshold: float | None
    consensus_method: Method
    priority: int
    task_order: TaskOrder
    instant_feedback: bool
    auto_complete: bool
    show_prelabels: bool
    external_id_field: str | None
    created_at: datetime
    updated_at: datetime | None
    activated_at: datetime | None
    finished_at: datetime | None
    warnings: list[str] = Field(
        default_factory=list,
        description="Only on activation: what may keep the job from finishing (gold thin for "
        "its size); progress keeps them",
    )

    @classmethod
    def of(cls, job: Any) -> JobOut:
        # A mapper, not from_attributes: `pricing` and `overlap` nest flat columns.
        return cls(
            id=job.id,
            client_id=job.client_id,
            title=job.title,
            instructions=job.instructions,
            label_schema=job.label_schema,
            status=job.status,
            pause_reason=job.pause_reason,
            pricing={
                "mode": job.pricing_mode,
                "rate_micros": job.rate_micros,
                "rate": format_micros(job.rate_micros),
                "tier_multipliers_bps": job.tier_multipliers_bps,
                "gold_bonus_micros": job.gold_bonus_micros,
                "gold_bonus_min_score": job.gold_bonus_min_score,
                "max_seconds_per_task": job.max_seconds_per_task,
                "platform_fee_bps": job.platform_fee_bps,
            },
            overlap={"min": job.overlap_min, "max": job.overlap_max},
            items_per_task=job.items_per_task,
            gold_ratio=job.gold_ratio,
            required_skills=job.required_skills,
            min_reputation=job.min_reputation,
            min_tier=job.min_tier,
            lease_seconds=job.lease_seconds,
            max_tasks_per_annotator=job.max_tasks_per_annotator,
            deadline=job.deadline,
            confidence_threshold=job.confidence_threshold,
            consensus_method=job.consensus_method,
            priority=job.priority,
            task_order=job.task_order,
            instant_feedback=job.instant_feedback,
            auto_complete=job.auto_complete,
            show_prelabels=job.show_prelabels,
            external_id_field=job.external_id_field,
            created_at=job.created_at,
            updated_at=job.updated_at,
            activated_at=job.activated_at,
            finished_at=job.finished_at,
        )


class RowError(BaseModel):
    line: int = Field(description="1-based line (CSV, JSONL) or element number (JSON array)")
    pointer: str | None = None
    detail: str


class ImportReport(BaseModel):
    format: str
    mode: str
    rows_read: int
    accepted: int
    created: int
    unchanged: int = Field(
        description="Rows whose external id was already imported with the "
        "same content (re-upload is idempotent)"
    )
    rejected: int
    gold: int
    errors: list[RowError]
    errors_truncated: bool
    tasks_created: int
    annotations: int = Field(
        default=0, description="Annotations of Label Studio tasks read (cancelled ones aside)"
    )
    gold_from_annotations: int = Field(
        default=0,
        description="Label Studio tasks whose annotation became the gold answer (annotations=gold)",
    )


class ImportAccepted(BaseModel):
    run_id: int
    status_url: str


class RunAccepted(BaseModel):
    """Work queued as a background run: follow `status_url`."""

    run_id: int
    status_url: str


class ConsensusFitOut(BaseModel):
    method: str
    version: int
    answers: int = Field(description="answers the fit saw")
    items: int = Field(description="items whose consensus it wrote")
    fitted_at: datetime


class ConsensusOut(BaseModel):
    """How the job's answers become a consensus: its method and its estimator's last fit (the
    model each submit's online consensus holds fixed; none before the first refit)."""

    method: str
    fit: ConsensusFitOut | None


ExportFormat = Literal["jsonl", "csv", "label-studio", "coco"]


ProgressState = Literal["running", "starved", "waiting-for-leases", "complete"]


class ProgressReason(BaseModel):
    """Why a job is starved, waiting or complete: `code` is stable, `detail` for people."""

    code: Literal[
        "all-tasks-complete",
        "job-paused",
        "escrow-exhausted",
        "job-not-active",
        "no-tasks",
        "open-slots-leased",
        "no-recent-answers",
    ]
    detail: str
    leases_end_at: datetime | None = Field(
        default=None, description="With `open-slots-leased`: when the earliest lease ends"
    )


class Progress(BaseModel):
    job_id: int
    status: JobStatus
    items: dict[str, int]
    tasks: dict[str, int]
    assignments: dict[str, int]
    consensus_reached: int
    answers_last_hour: int
    release_reasons: list[dict[str, Any]] = Field(
        description="Why annotators skipped tasks, most frequent first (aggregate only)"
    )
    estimated_completion: datetime | None = Field(
        description="From the answers of the last hour; null when nothing is moving (see "
        "`no_estimate_reason`)"
    )
    no_estimate_reason: str | None = Field(
        default=None, description="Why `estimated_completion` is null (null when it is not)"
    )
    state: ProgressState = Field(
        description="`running` (answers are coming in), `starved` (tasks wait and nothing "
        "moves: see `state_reasons`), `waiting-for-leases` (every open slot is leased), "
        "`complete` (every task has its answers)"
    )
    state_reasons: list[ProgressReason] = Field(
        default_factory=list, description="Why the job is in its state, when not `running`"
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What may keep the job from finishing (gold thin for its size), as given "
        "on activation",
    )
