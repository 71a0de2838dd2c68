"""Jobs: create, read, update, and the status machine
draft → active ⇄ paused → completed | cancelled. Services flush, never commit."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.consensus import refits
from app.consensus.methods import DEFAULT_METHOD
from app.core import caches
from app.core.clock import utcnow
from app.core.errors import NotFound, ValidationFailed
from app.core.pagination import PageParams, page_of, paginate
from app.core.security import Principal
from app.jobs import results, schemas
from app.jobs.errors import (
    JobFinished,
    JobFrozen,
    JobHasNoItems,
    LabelSchemaLocked,
    ResumeNeedsAdmin,
    TransitionNotAllowed,
)
from app.label_schema import ImageControl, LabelSchema, parse_label_schema_at
from app.models.accounts import Role
from app.models.jobs import Item, Job, JobStatus, PauseReason, Task, TaskOrder, TaskStatus
from app.webhooks import service as webhooks
from payouts import lifecycle as money
from qualification_tests import skills as qualification_skills

DEFAULT_LEASE_SECONDS = 600

# Which status may follow which (the action names the endpoint).
TRANSITIONS: dict[str, tuple[frozenset[JobStatus], JobStatus]] = {
    "activate": (frozenset({JobStatus.draft, JobStatus.paused}), JobStatus.active),
    "pause": (frozenset({JobStatus.active}), JobStatus.paused),
    "complete": (frozenset({JobStatus.active, JobStatus.paused}), JobStatus.completed),
    "cancel": (
        frozenset({JobStatus.draft, JobStatus.active, JobStatus.paused}),
        JobStatus.cancelled,
    ),
}

# Fields that define the work itself: frozen once annotators may have seen the job.
DRAFT_ONLY = ("label_schema", "pricing", "items_per_task", "gold_ratio", "external_id_field")


def job_schema(job: Job) -> LabelSchema:
    """The job's label schema as a model (stored documents were validated on the way in).
    Parsed once per job (`caches.job_schemas`): a schema cannot change once the job has items
    (the only time anyone answers against it); a draft's edits bump `updated_at`, which is part
    of the key."""
    key = (job.id, job.updated_at or job.created_at)
    schema: LabelSchema | None = caches.job_schemas.get(key, caches.FOREVER)
    if schema is None:
        schema = LabelSchema.model_validate(job.label_schema)
        caches.job_schemas.put(key, schema, time.monotonic())
    return schema


def create_job(session: Session, client: Principal, body: schemas.JobCreate) -> Job:
    """Create a draft job owned by `client` (validates and normalises the label schema; a
    Label Studio config is kept as sent)."""
    label_schema = parse_label_schema_at(body.label_schema)
    if body.image_size is not None:
        label_schema = with_image_size(label_schema, body.image_size)
    required_skills = [r.model_dump() for r in body.required_skills or []]
    qualification_skills.check_required_skills(session, required_skills)
    assert body.overlap.max is not None
    job = Job(
        client_id=client.id,
        title=body.title,
        instructions=body.instructions or "",
        label_schema=label_schema.model_dump(mode="json", exclude_defaults=False),
        label_studio_config=_label_studio_config(body.label_schema),
        status=JobStatus.draft,
        **_pay_terms(body.pricing),
        overlap_min=body.overlap.min,
        overlap_max=body.overlap.max,
        items_per_task=body.items_per_task,
        gold_ratio=body.gold_ratio,
        required_skills=required_skills,
        min_reputation=body.min_reputation,
        min_tier=body.min_tier,
        lease_seconds=body.lease_seconds or DEFAULT_LEASE_SECONDS,
        max_tasks_per_annotator=body.max_tasks_per_annotator,
        deadline=body.deadline,
        confidence_threshold=body.confidence_threshold,
        consensus_method=(body.consensus_method or DEFAULT_METHOD).value,
        priority=body.priority or 0,
        task_order=body.task_order or TaskOrder.near_completion,
        instant_feedback=bool(body.instant_feedback),
        auto_complete=body.auto_complete is not False,
        show_prelabels=bool(body.show_prelabels),
        external_id_field=body.external_id_field,
    )
    session.add(job)
    session.flush()
    return job


def _label_studio_config(document: object) -> str | None:
    return document if isinstance(document, str) else None


def with_image_size(schema: LabelSchema, size: schemas.ImageSize) -> LabelSchema:
    """`schema` with `size`'s fields as the image size of every shape control naming none;
    422 when the schema has no shape control."""
    shapes = [c for c in schema.controls if isinstance(c, ImageControl)]
    if not shapes:
        raise ValidationFailed(
            "image_size applies to boxes, polygons and keypoints; this schema has none",
            errors=[{"pointer": "#/image_size", "detail": "the schema has no shape control"}],
        )
    controls = [
        c.model_copy(update={"width_field": size.width_field, "height_field": size.height_field})
        if isinstance(c, ImageControl) and not (c.width_field or c.height_field)
        else c
        for c in schema.controls
    ]
    return LabelSchema.model_validate(
        {"controls": [c.model_dump(mode="json") for c in controls]}, strict=True
    )


def _pay_terms(pricing: schemas.Pricing) -> dict[str, Any]:
    """The job columns a pricing body sets."""
    multipliers = pricing.tier_multipliers_bps
    return {
        "pricing_mode": pricing.mode,
        "rate_micros": pricing.rate_micros,
        "tier_multipliers_bps": {t.value: v for t, v in multipliers.items()}
        if multipliers
        else None,
        "gold_bonus_micros": pricing.gold_bonus_micros,
        "gold_bonus_min_score": pricing.gold_bonus_min_score,
        "max_seconds_per_task": pricing.max_seconds_per_task,
    }


def get_job(session: Session, principal: Principal, job_id: int, *, lock: bool = False) -> Job:
    """The job if `principal` owns it (or is an admin); 404 otherwise, so ids do not leak."""
    stmt = select(Job).where(Job.id == job_id)
    if lock:
        stmt = stmt.with_for_update()
    job = session.scalar(stmt)
    if job is None or (principal.role is not Role.admin and job.client_id != principal.id):
        raise NotFound("No such job")
    return job


def list_jobs(
    session: Session, principal: Principal, params: PageParams, status: JobStatus | None = None
) -> tuple[list[Job], int | None]:
    stmt = select(Job)
    if principal.role is not Role.admin:
        stmt = stmt.where(Job.client_id == principal.id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    jobs = list(session.scalars(paginate(stmt, Job.id, params)))
    return page_of(jobs, params, [j.id for j in jobs])


def update_job(session: Session, job: Job, body: schemas.JobUpdate) -> Job:
    """Apply a partial update; 409 for changes the job's status no longer allows."""
    changes = body.model_dump(exclude_unset=True)
    if job.status in (JobStatus.completed, JobStatus.cancelled):
        raise JobFinished(f"A {job.status.value} job cannot be changed")
    frozen = [name for name in DRAFT_ONLY if name in changes]
    if frozen and job.status is not JobStatus.draft:
        raise JobFrozen(
            "These fields can only change while the job is a draft",
            errors=[
                {"pointer": f"#/{name}", "detail": "frozen after activation"} for name in frozen
            ],
        )
    if "label_schema" in changes and body.label_schema is not None:
        schema = parse_label_schema_at(body.label_schema)
        if _has_items(session, job.id):
            raise LabelSchemaLocked(
                "The label schema cannot change once items are imported (their gold answers and "
                "fields were checked against it); delete the job or create a new one",
                errors=[{"pointer": "#/label_schema", "detail": "items already imported"}],
            )
        job.label_schema = schema.model_dump(mode="json")
        job.label_studio_config = _label_studio_config(body.label_schema)
    if body.pricing is not None:
        for column, term in _pay_terms(body.pricing).items():
            setattr(job, column, term)
    if body.overlap is not None:
        assert body.overlap.max is not None
        if job.status is not JobStatus.draft and body.overlap.min != job.overlap_min:
            raise JobFrozen(
                "overlap.min can only change while the job is a draft",
                errors=[{"pointer": "#/overlap/min", "detail": "frozen after activation"}],
            )
        job.overlap_min, job.overlap_max = body.overlap.min, body.overlap.max
        if job.status is not JobStatus.draft:
            money.overlap_changed(session, job)  # more slots: reserved, or 402
    if body.consensus_method is not None and body.consensus_method != job.consensus_method:
        job.consensus_method = body.consensus_method.value
        if job.status is not JobStatus.draft:
            refits.request_refit(session, job.id)  # its consensus so far, by the new method
    if body.required_skills is not None:
        job.required_skills = [r.model_dump() for r in body.required_skills]
        qualification_skills.check_required_skills(session, job.required_skills)
    simple = (
        "title",
        "instructions",
        "items_per_task",
        "gold_ratio",
        "min_reputation",
        "min_tier",
        "lease_seconds",
        "max_tasks_per_annotator",
        "deadline",
        "confidence_threshold",
        "priority",
        "task_order",
        "instant_feedback",
        "auto_complete",
        "show_prelabels",
        "external_id_field",
    )
    for name in simple:
        if name in changes:
            value: Any = changes[name]
            if value is None and name in (
                "title",
                "items_per_task",
                "gold_ratio",
                "priority",
                "task_order",
                "instant_feedback",
                "auto_complete",
                "show_prelabels",
                "lease_seconds",
            ):
                continue  # these have no "unset"
            setattr(job, name, value if name != "instructions" else (value or ""))
    job.updated_at = utcnow()
    session.flush()
    return job


def _has_items(session: Session, job_id: int) -> bool:
    return session.scalar(select(Item.id).where(Item.job_id == job_id).limit(1)) is not None


def change_status(
    session: Session,
    job: Job,
    action: str,
    *,
    by: Role | None = None,
    reason: PauseReason | None = None,
    refit_now: bool = False,
) -> Job:
    """Move the job along the status machine; 409 naming the allowed moves otherwise.
    Activating a draft needs at least one regular item (the split that follows reserves its
    escrow, 402 if the client's funds are short); resuming a paused job pays the fair-pay
    top-ups it owes first (402 if its escrow cannot), and one paused because its client was
    suspended resumes by an admin only (403); completing or cancelling releases unspent escrow
    to the client. A completed job's consensus is refitted a last time, then `export.ready` sent
    (`results`): in this transaction with `refit_now` (a background job completing it), else in
    a background job of its own. `by` is the role of who moves it (None: the system), `reason`
    why a pause happens (by default who paused); webhooks hear of pauses, completions and final
    results."""
    allowed_from, target = TRANSITIONS[action]
    if job.status not in allowed_from:
        possible = sorted(a for a, (froms, _) in TRANSITIONS.items() if job.status in froms)
        raise TransitionNotAllowed(
            f"Cannot {action} a {job.status.value} job",
            current_status=job.status.value,
            allowed_actions=possible,
        )
    if action == "activate" and job.status is JobStatus.draft:
        regular = session.scalar(
            select(func.count()).where(Item.job_id == job.id, Item.is_gold.is_(False))
        )
        if not regular:
            raise JobHasNoItems("Import at least one (non-gold) item before activating the job")
        job.activated_at = utcnow()
    if action == "activate" and job.status is JobStatus.paused:
        if job.pause_reason == PauseReason.client_suspended and by is not Role.admin:
            raise ResumeNeedsAdmin(
                "This job was paused because its client was suspended; "
                "only an administrator can resume it"
            )
        money.job_resuming(session, job)
    if target in (JobStatus.completed, JobStatus.cancelled):
        job.finished_at = utcnow()
    if target is JobStatus.cancelled:
        session.execute(
            update(Task)
            .where(Task.job_id == job.id, Task.status == TaskStatus.open)
            .values(status=TaskStatus.cancelled)
        )
    job.status = target
    job.pause_reason = _pause_reason(by, reason) if target is JobStatus.paused else None
    job.updated_at = utcnow()
    session.flush()
    if target in (JobStatus.completed, JobStatus.cancelled):
        money.job_finished(session, job)
    webhooks.job_status_changed(session, job, action, by)
    if target is JobStatus.completed and refit_now:
        results.finalize_results(session, job)
    elif target is JobStatus.completed:
        results.request_finalize(session, job.id)
    elif target is JobStatus.cancelled:
        results.results_final_now(session, job)
    return job


def _pause_reason(by: Role | None, reason: PauseReason | None) -> PauseReason:
    if reason is not None:
        return reason
    return PauseReason.paused_by_admin if by is Role.admin else PauseReason.paused_by_client


def pause_jobs_of_suspended_client(session: Session, client_id: int) -> list[Job]:
    """The client was suspended: each of its active jobs pauses (reason `client_suspended`,
    its webhook `job.paused` recorded), so annotators claim no more of its work and its escrow
    stops being spent on new tasks (work in flight may still be submitted, as in any pause).
    Only an admin resumes them; reactivating the client does not."""
    jobs = list(
        session.scalars(
            select(Job)
            .where(Job.client_id == client_id, Job.status == JobStatus.active)
            .order_by(Job.id)
            .with_for_update()
        )
    )
    for job in jobs:
        change_status(session, job, "pause", by=Role.admin, reason=PauseReason.client_suspended)
    return jobs
