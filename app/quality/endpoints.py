"""HTTP for quality: clients review their jobs' work and read its quality report
(/v1/quality/jobs/{id}/…), annotators see their own standing and appeal (/v1/annotator/…),
admins work the queues of flags, removals, proposals and appeals and read an annotator's
evidence (/v1/admin/…).

Clients' routes live under /v1/quality rather than /v1/jobs (the jobs package's prefix); each
checks the job is the caller's own (404 otherwise, as every jobs route does). Annotators only
ever get their own figures, reasons and numbers: no evidence ids, no gold answers, no other
annotator, no reviewer's identity.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import schemas as account_schemas
from app.accounts.errors import CannotSuspendSelf
from app.core.clock import utcnow
from app.core.errors import NotFound, ValidationFailed, problem_responses
from app.core.inputs import Int64, PathId
from app.core.pagination import PageParams, page_params
from app.core.security import (
    AdminPrincipal,
    AnnotatorPrincipal,
    ClientPrincipal,
    DbSession,
    ReadSession,
    client_pseudonym,
)
from app.core.settings import Settings
from app.jobs import service as jobs
from app.models.jobs import Answer, AssignmentStatus, Item, Job
from app.models.quality import (
    ActionKind,
    ActionStatus,
    AppealStatus,
    QualityAction,
    QualityRule,
)
from app.quality import (
    appeals,
    enforcement,
    job_settings,
    reports,
    reputation,
    review,
    schemas,
    tracking,
)
from app.quality.background import start_refresh_all
from app.quality.errors import (
    ActionNotOpen,
    AppealExists,
    AppealResolved,
    AssignmentAlreadyApproved,
    AssignmentNotSubmitted,
    NothingToAppeal,
)
from payouts.errors import InsufficientFunds
from qualification_tests import annotators

router = APIRouter(prefix="/v1")

Paging = Annotated[PageParams, Depends(page_params)]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(_settings)]


def _pseudonym(settings: Settings, job: Job, annotator_id: int) -> str:
    """The annotator as the job's client knows them (the pseudonym exports use)."""
    return client_pseudonym(settings.resolved_secret_key(), job.client_id, annotator_id)


# --- clients: review -----------------------------------------------------------------------------


@router.get(
    "/quality/jobs/{job_id}/assignments", tags=["review"], response_model=schemas.ReviewPage
)
def list_for_review(
    job_id: PathId,
    client: ClientPrincipal,
    session: ReadSession,
    settings: AppSettings,
    paging: Paging,
    status_: Annotated[
        Literal["submitted", "approved", "rejected"] | None, Query(alias="status")
    ] = "submitted",
) -> schemas.ReviewPage:
    """Work submitted on your job (by default what still awaits review), with the answers,
    gold scores, the latest review and the rules that flagged it; annotators by pseudonym."""
    job = jobs.get_job(session, client, job_id)
    wanted = AssignmentStatus(status_) if status_ is not None else None
    rows, cursor = review.assignments_for_review(session, job, wanted, paging)
    ids = [a.id for a in rows]
    answers: dict[int, list[schemas.ReviewAnswer]] = {i: [] for i in ids}
    for assignment_id, item_id, external_id, is_gold, score, value in session.execute(
        select(
            Answer.assignment_id,
            Answer.item_id,
            Item.external_id,
            Item.is_gold,
            Answer.score,
            Answer.value,
        )
        .join(Item, Item.id == Answer.item_id)
        .where(Answer.assignment_id.in_(ids))
        .order_by(Answer.id)
    ):
        answers[assignment_id].append(
            schemas.ReviewAnswer(
                item_id=item_id, external_id=external_id, is_gold=is_gold, score=score, answer=value
            )
        )
    latest = review.latest_decisions(session, ids)
    flags: dict[int, list[QualityRule]] = {i: [] for i in ids}
    for assignment_id, rule in session.execute(
        select(QualityAction.assignment_id, QualityAction.rule).where(
            QualityAction.assignment_id.in_(ids), QualityAction.status != ActionStatus.reversed
        )
    ):
        if assignment_id is not None:
            flags[assignment_id].append(rule)
    return schemas.ReviewPage(
        items=[
            schemas.ReviewItem(
                id=a.id,
                annotator=_pseudonym(settings, job, a.annotator_id),
                task_id=a.task_id,
                status=a.status,
                claimed_at=a.claimed_at,
                submitted_at=a.submitted_at,
                active_seconds=a.active_seconds,
                seconds_to_submit=(
                    (a.submitted_at - a.claimed_at).total_seconds() if a.submitted_at else None
                ),
                gold_score=a.gold_score,
                answers=answers[a.id],
                review=(
                    schemas.LatestReview(
                        status=latest[a.id].new_status,
                        source=latest[a.id].source,
                        reason=latest[a.id].reason,
                        at=latest[a.id].created_at,
                    )
                    if a.id in latest
                    else None
                ),
                flags=flags[a.id],
            )
            for a in rows
        ],
        next_cursor=cursor,
    )


@router.post(
    "/quality/jobs/{job_id}/approve",
    tags=["review"],
    response_model=schemas.ReviewResult,
    responses=problem_responses(
        (NotFound, "the job is not yours, or an id is not an assignment of it"),
        AssignmentNotSubmitted,
        (InsufficientFunds, "re-approving rejected work needs escrow the client cannot fund"),
    ),
)
def approve(
    job_id: PathId, body: schemas.ApproveRequest, client: ClientPrincipal, session: DbSession
) -> schemas.ReviewResult:
    """Approve submitted work of your job, one assignment or many (all or none), with an
    optional note. Approving work you rejected reverses your rejection."""
    job = jobs.get_job(session, client, job_id)
    done = review.approve_assignments(
        session, job, body.assignment_ids, actor_id=client.id, reason=body.reason, now=utcnow()
    )
    session.commit()
    return schemas.ReviewResult(
        status=AssignmentStatus.approved, changed=done.changed, unchanged=done.unchanged
    )


@router.post(
    "/quality/jobs/{job_id}/reject",
    tags=["review"],
    response_model=schemas.ReviewResult,
    responses=problem_responses(
        (NotFound, "the job is not yours, or an id is not an assignment of it"),
        AssignmentNotSubmitted,
        AssignmentAlreadyApproved,
    ),
)
def reject(
    job_id: PathId, body: schemas.RejectRequest, client: ClientPrincipal, session: DbSession
) -> schemas.ReviewResult:
    """Reject submitted work of your job with a reason (required; the annotators see it and may
    appeal), all or none. Each rejected answer's slot opens again for someone else."""
    job = jobs.get_job(session, client, job_id)
    done = review.reject_assignments(
        session, job, body.assignment_ids, actor_id=client.id, reason=body.reason, now=utcnow()
    )
    session.commit()
    return schemas.ReviewResult(
        status=AssignmentStatus.rejected, changed=done.changed, unchanged=done.unchanged
    )


# --- clients: the job's rules and report ---------------------------------------------------------


def _rules_out(session: Session, settings: Settings, job: Job) -> schemas.JobRulesOut:
    row = job_settings.settings_of(session, job.id)
    t = job_settings.thresholds_for_jobs(session, settings, [job.id])[job.id]
    return schemas.JobRulesOut(
        speed_floor_seconds=row.speed_floor_seconds if row else None,
        removal_gold_accuracy=row.removal_gold_accuracy if row else None,
        removal_min_gold_answers=row.removal_min_gold_answers if row else None,
        identical_run_length=row.identical_run_length if row else None,
        effective={
            "speed_floor_seconds": t.speed_floor_seconds,
            "removal_gold_accuracy": t.removal_gold_accuracy,
            "removal_min_gold_answers": t.removal_min_gold_answers,
            "identical_run_length": t.identical_run_length,
        },
        derived_floor_seconds=row.derived_floor_seconds if row else None,
        derived_from_submits=row.derived_from_submits if row else 0,
    )


@router.get("/quality/jobs/{job_id}/rules", tags=["review"], response_model=schemas.JobRulesOut)
def get_job_rules(
    job_id: PathId, client: ClientPrincipal, session: ReadSession, settings: AppSettings
) -> schemas.JobRulesOut:
    """The job's own quality-rule thresholds (null: the platform default) and those in force."""
    return _rules_out(session, settings, jobs.get_job(session, client, job_id))


@router.put("/quality/jobs/{job_id}/rules", tags=["review"], response_model=schemas.JobRulesOut)
def put_job_rules(
    job_id: PathId,
    body: schemas.JobRules,
    client: ClientPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> schemas.JobRulesOut:
    """Replace the job's quality-rule thresholds (fields left out or null follow the platform
    defaults). They apply from the next check on."""
    job = jobs.get_job(session, client, job_id, lock=True)
    job_settings.set_job_rules(
        session,
        job,
        speed_floor_seconds=body.speed_floor_seconds,
        removal_gold_accuracy=body.removal_gold_accuracy,
        removal_min_gold_answers=body.removal_min_gold_answers,
        identical_run_length=body.identical_run_length,
        by_id=client.id,
        now=utcnow(),
    )
    session.commit()
    return _rules_out(session, settings, job)


@router.get("/quality/jobs/{job_id}/report", tags=["review"], response_model=schemas.JobReportOut)
def job_report(
    job_id: PathId, client: ClientPrincipal, session: ReadSession, settings: AppSettings
) -> schemas.JobReportOut:
    """Your job's quality: agreement between annotators, the consensus methods used, the
    distribution of consensus confidence, review counts, each annotator's figures on the job
    under the pseudonym exports use, and how often answers kept a pre-label unchanged."""
    job = jobs.get_job(session, client, job_id)
    report = reports.job_report(session, job)
    bins = reports.HISTOGRAM_BINS
    return schemas.JobReportOut(
        job_id=job.id,
        methods=report.methods,
        agreement=schemas.AgreementOut(
            metric=report.agreement.metric,
            value=report.agreement.value,
            per_control=report.agreement.per_control,
            items=report.agreement.items,
            controls={
                name: schemas.ControlAgreementOut.model_validate(c, from_attributes=True)
                for name, c in report.agreement.controls.items()
            },
        ),
        confidence_histogram=[
            schemas.HistogramBin(low=i / bins, high=(i + 1) / bins, items=n)
            for i, n in enumerate(report.confidence_histogram)
        ],
        assignments=report.assignments,
        annotators_out_of_gold=report.out_of_gold,
        annotators=[
            schemas.ReportAnnotator(
                annotator=_pseudonym(settings, job, row.annotator_id),
                tasks=row.tasks,
                gold_answers=row.gold_answers,
                gold_accuracy=row.gold_accuracy,
                agreement=row.agreement,
                approval_rate=row.approval_rate,
                median_active_seconds=row.median_active_seconds,
                fast_share=row.fast_share,
                longest_identical_run=row.longest_identical_run,
                computed_at=row.computed_at,
            )
            for row in report.annotators
        ],
        prelabels=schemas.PrelabelUseOut.of(report.prelabels, partial(_pseudonym, settings, job)),
    )


# --- annotators: their own standing, decisions and appeals ---------------------------------------


@router.get("/annotator/quality", tags=["annotator"], response_model=schemas.QualityOut)
def my_quality(
    annotator: AnnotatorPrincipal, session: ReadSession, settings: AppSettings
) -> schemas.QualityOut:
    """Your reputation and tier (and an admin's override with its reason, if any), what the next
    tier needs, and your figures overall, per job and per skill (as of the last refresh)."""
    return schemas.QualityOut.of(reports.annotator_quality(session, settings, annotator.id))


@router.get("/annotator/quality/actions", tags=["annotator"], response_model=schemas.MyActionPage)
def my_actions(
    annotator: AnnotatorPrincipal, session: ReadSession, paging: Paging
) -> schemas.MyActionPage:
    """What the quality rules did about your work (removals, flags, proposals) and why, oldest
    first."""
    rows, cursor = enforcement.list_actions(session, paging, status=None, annotator_id=annotator.id)
    return schemas.MyActionPage(
        items=[schemas.ActionOut.model_validate(a) for a in rows], next_cursor=cursor
    )


@router.get("/annotator/quality/decisions", tags=["annotator"], response_model=schemas.DecisionPage)
def my_decisions(
    annotator: AnnotatorPrincipal, session: ReadSession, paging: Paging
) -> schemas.DecisionPage:
    """Review decisions about your work (approvals, rejections with their reasons, overturns),
    oldest first."""
    rows, cursor = review.decisions_of(session, annotator.id, paging)
    return schemas.DecisionPage(
        items=[schemas.DecisionOut.model_validate(d) for d in rows], next_cursor=cursor
    )


@router.post(
    "/annotator/appeals",
    tags=["annotator"],
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.AppealOut,
    responses=problem_responses((NotFound, "not your assignment"), NothingToAppeal, AppealExists),
)
def file_appeal(
    body: schemas.AppealCreate, annotator: AnnotatorPrincipal, session: DbSession
) -> schemas.AppealOut:
    """Appeal a rejection of your work, or the score of its control items on a job that showed
    it, once per judgment, with a message for the admin who decides."""
    appeal = appeals.file_appeal(
        session, annotator.id, body.assignment_id, body.kind, body.message, utcnow()
    )
    session.commit()
    return schemas.AppealOut.model_validate(appeal)


@router.get("/annotator/appeals", tags=["annotator"], response_model=list[schemas.AppealOut])
def my_appeals(annotator: AnnotatorPrincipal, session: ReadSession) -> list[schemas.AppealOut]:
    """Your appeals and their outcome, newest first."""
    return [schemas.AppealOut.model_validate(a) for a in appeals.appeals_of(session, annotator.id)]


# --- admins: queues and decisions ----------------------------------------------------------------


@router.get("/admin/quality/actions", tags=["admin"], response_model=schemas.ActionPage)
def action_queue(
    _: AdminPrincipal,
    session: ReadSession,
    paging: Paging,
    status_: Annotated[
        Literal["open", "confirmed", "reversed", "all"], Query(alias="status")
    ] = "open",
    kind: ActionKind | None = None,
    rule: QualityRule | None = None,
    annotator_id: Int64 | None = None,
) -> schemas.ActionPage:
    """Rule actions with their evidence, oldest first: by default the open ones (flags to look
    at, removals in force, suspension proposals to confirm or dismiss)."""
    rows, cursor = enforcement.list_actions(
        session,
        paging,
        status=None if status_ == "all" else ActionStatus(status_),
        kind=kind,
        rule=rule,
        annotator_id=annotator_id,
    )
    return schemas.ActionPage(
        items=[schemas.AdminActionOut.model_validate(a) for a in rows], next_cursor=cursor
    )


@router.post(
    "/admin/users/{user_id}/suspend",
    tags=["admin"],
    response_model=account_schemas.AdminUserOut,
    responses=problem_responses(CannotSuspendSelf),
)
def suspend_user(
    user_id: PathId,
    body: account_schemas.SuspendRequest,
    admin: AdminPrincipal,
    session: DbSession,
) -> account_schemas.AdminUserOut:
    """Suspend an account with a reason; its tokens answer 403 until it is reactivated. A
    client's active jobs pause (reason `client_suspended`; an admin resumes them) and its
    webhooks are held until it is reactivated."""
    user = enforcement.suspend_account(
        session, user_id=user_id, reason=body.reason, admin_id=admin.id
    )
    session.commit()
    return account_schemas.AdminUserOut.model_validate(user)


@router.post(
    "/admin/quality/actions/{action_id}/confirm",
    tags=["admin"],
    response_model=schemas.AdminActionOut,
    responses=problem_responses(ActionNotOpen),
)
def confirm_action(
    action_id: PathId, body: schemas.ActionDecision, admin: AdminPrincipal, session: DbSession
) -> schemas.AdminActionOut:
    """Agree with an open action: acknowledge a flag, keep a removal, or suspend the account a
    suspension proposal names."""
    action = enforcement.get_action(session, action_id, lock=True)
    enforcement.confirm_action(session, action, admin_id=admin.id, note=body.note, now=utcnow())
    session.commit()
    return schemas.AdminActionOut.model_validate(action)


@router.post(
    "/admin/quality/actions/{action_id}/reverse",
    tags=["admin"],
    response_model=schemas.AdminActionOut,
    responses=problem_responses(ActionNotOpen),
)
def reverse_action(
    action_id: PathId, body: schemas.ActionDecision, admin: AdminPrincipal, session: DbSession
) -> schemas.AdminActionOut:
    """Undo an action: lift a removal's ban (its evidence no longer counts against the
    annotator), withdraw a flag, dismiss a proposal or lift the suspension it led to."""
    action = enforcement.get_action(session, action_id, lock=True)
    enforcement.reverse_action(session, action, admin_id=admin.id, note=body.note, now=utcnow())
    session.commit()
    return schemas.AdminActionOut.model_validate(action)


@router.get("/admin/appeals", tags=["admin"], response_model=schemas.AppealPage)
def appeal_queue(
    _: AdminPrincipal,
    session: ReadSession,
    paging: Paging,
    status_: Annotated[
        Literal["open", "upheld", "overturned", "all"], Query(alias="status")
    ] = "open",
) -> schemas.AppealPage:
    """Appeals, oldest first; by default the open ones."""
    rows, cursor = appeals.list_appeals(
        session, paging, status=None if status_ == "all" else AppealStatus(status_)
    )
    return schemas.AppealPage(
        items=[schemas.AdminAppealOut.model_validate(a) for a in rows], next_cursor=cursor
    )


@router.post(
    "/admin/appeals/{appeal_id}/resolve",
    tags=["admin"],
    response_model=schemas.AdminAppealOut,
    responses=problem_responses(
        AppealResolved,
        (ValidationFailed, "a gold score on a rejection appeal"),
        (InsufficientFunds, "overturning a rejection needs escrow the client cannot fund"),
    ),
)
def resolve_appeal(
    appeal_id: PathId,
    body: schemas.AppealResolution,
    admin: AdminPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> schemas.AdminAppealOut:
    """Uphold or overturn an appeal with a note for the annotator. Overturning approves the
    assignment again (a gold appeal also clears or re-scores its control items) and recomputes
    the annotator's figures, reversing a removal they no longer support."""
    appeal = appeals.resolve_appeal(
        session,
        settings,
        appeal_id,
        overturn=body.outcome == "overturned",
        note=body.note,
        admin_id=admin.id,
        now=utcnow(),
        gold_score=body.gold_score,
    )
    session.commit()
    return schemas.AdminAppealOut.model_validate(appeal)


# --- admins: one annotator -----------------------------------------------------------------------


@router.get(
    "/admin/annotators/{annotator_id}/quality", tags=["admin"], response_model=schemas.EvidenceOut
)
def evidence(
    annotator_id: PathId, _: AdminPrincipal, session: ReadSession, settings: AppSettings
) -> schemas.EvidenceOut:
    """Everything behind an annotator's standing: figures, reputation evidence, overrides,
    every rule action with its evidence, appeals and the latest review decisions."""
    user = annotators.get_annotator(session, annotator_id)
    quality = reports.annotator_quality(session, settings, annotator_id)
    computed = quality.standing.computed
    return schemas.EvidenceOut(
        annotator_id=user.id,
        email=user.email,
        display_name=user.display_name,
        account_status=user.status.value,
        quality=schemas.QualityOut.of(quality),
        reputation_evidence=computed.evidence if computed is not None else None,
        overrides=[
            schemas.AdminOverrideOut.model_validate(o)
            for o in reputation.overrides_of(session, annotator_id)
        ],
        actions=[
            schemas.AdminActionOut.model_validate(a)
            for a in enforcement.actions_of(session, annotator_id)
        ],
        appeals=[
            schemas.AdminAppealOut.model_validate(a)
            for a in appeals.appeals_of(session, annotator_id)
        ],
        recent_decisions=[
            schemas.AdminDecisionOut.model_validate(d)
            for d in reports.recent_decisions(session, annotator_id)
        ],
    )


@router.put(
    "/admin/annotators/{annotator_id}/reputation-override",
    tags=["admin"],
    response_model=schemas.QualityOut,
)
def set_override(
    annotator_id: PathId,
    body: schemas.OverrideRequest,
    admin: AdminPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> schemas.QualityOut:
    """Override an annotator's tier and/or reputation with a reason (shown to them). It wins
    over the computed values until cleared; eligibility sees it at once."""
    annotators.get_annotator(session, annotator_id)
    reputation.set_override(
        session,
        annotator_id,
        tier=body.tier,
        reputation=body.reputation,
        reason=body.reason,
        admin_id=admin.id,
        now=utcnow(),
    )
    session.commit()
    return schemas.QualityOut.of(reports.annotator_quality(session, settings, annotator_id))


@router.delete(
    "/admin/annotators/{annotator_id}/reputation-override",
    tags=["admin"],
    status_code=status.HTTP_204_NO_CONTENT,
)
def clear_override(annotator_id: PathId, admin: AdminPrincipal, session: DbSession) -> Response:
    """End the override in force (kept on record); the computed values apply again."""
    annotators.get_annotator(session, annotator_id)
    reputation.clear_override(session, annotator_id, admin_id=admin.id, now=utcnow())
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/admin/annotators/{annotator_id}/quality/refresh",
    tags=["admin"],
    response_model=schemas.QualityOut,
)
def refresh_annotator(
    annotator_id: PathId, _: AdminPrincipal, session: DbSession, settings: AppSettings
) -> schemas.QualityOut:
    """Recompute one annotator's figures, reputation and tier now, and apply the rules."""
    annotators.get_annotator(session, annotator_id)
    now = utcnow()
    refreshed = tracking.refresh_annotators(session, settings, [annotator_id], now)
    enforcement.enforce(session, settings, refreshed, now)
    session.commit()
    return schemas.QualityOut.of(reports.annotator_quality(session, settings, annotator_id))


@router.post(
    "/admin/quality/refresh",
    tags=["admin"],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.RefreshAccepted,
)
def refresh_everyone(
    admin: AdminPrincipal, session: DbSession, response: Response
) -> schemas.RefreshAccepted:
    """Recompute every annotator's figures in the background (the scheduler does the ones out
    of date every ten minutes); follow the run."""
    run_id = start_refresh_all(session, admin.id)
    session.commit()
    response.headers["Location"] = f"/v1/runs/{run_id}"
    return schemas.RefreshAccepted(run_id=run_id, status_url=f"/v1/runs/{run_id}")
