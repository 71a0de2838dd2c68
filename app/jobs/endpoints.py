"""HTTP for clients' jobs: create, read, update, status, bans, dataset import, progress, export.

Every route under /v1/jobs lives here; where the rules belong to another domain (bans are
qualification's) the route calls that domain's service."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.consensus import refits
from app.core.db import Database
from app.core.errors import (
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from app.core.inputs import STORABLE, PathId
from app.core.pagination import Page, PageParams, page_params
from app.core.security import ClientPrincipal, DbSession, Principal, ReadSession, get_database
from app.core.settings import Settings
from app.jobs import (
    background,
    dataset_files,
    export,
    gold,
    importing,
    label_studio,
    progress,
    results,
    schemas,
    service,
    splitting,
)
from app.jobs.errors import (
    DecompressedTooLarge,
    EmptyDataset,
    ExportFormatUnavailable,
    ExternalIdFieldMissing,
    JobFinished,
    JobFrozen,
    JobHasNoItems,
    LabelSchemaChanged,
    LabelSchemaLocked,
    ResumeNeedsAdmin,
    TooManyUnusableLines,
    TransitionNotAllowed,
    UnreadableFile,
)
from app.label_schema.control_base import FieldName
from app.models.consensus import ConsensusFit
from app.models.jobs import JobStatus
from app.runs import service as runs
from app.webhooks import service as webhooks
from payouts.errors import InsufficientFunds
from qualification_tests import annotators as bans
from qualification_tests import schemas as qualification_schemas

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

Paging = Annotated[PageParams, Depends(page_params)]
SPOOL_IN_MEMORY = 8 * 1024 * 1024


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.JobOut,
    responses=problem_responses((ValidationFailed, "a bad label schema or image_size")),
)
def create_job(
    body: schemas.JobCreate, client: ClientPrincipal, session: DbSession
) -> schemas.JobOut:
    """Create a draft job. `label_schema` is a schema document or a Label Studio XML config (the
    config is kept: exports to Label Studio use its tag names, and it can be downloaded again);
    `image_size` names the payload fields giving each item's image size for shape controls."""
    job = service.create_job(session, client, body)
    session.commit()
    return schemas.JobOut.of(job)


@router.get("", response_model=Page[schemas.JobOut])
def list_jobs(
    client: ClientPrincipal,
    session: ReadSession,
    paging: Paging,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
) -> Page[schemas.JobOut]:
    """Your jobs (admins: everyone's)."""
    jobs, cursor = service.list_jobs(session, client, paging, status_)
    return Page(items=[schemas.JobOut.of(j) for j in jobs], next_cursor=cursor)


@router.get("/{job_id}", response_model=schemas.JobOut)
def get_job(job_id: PathId, client: ClientPrincipal, session: ReadSession) -> schemas.JobOut:
    return schemas.JobOut.of(service.get_job(session, client, job_id))


@router.get(
    "/{job_id}/label-studio-config",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "The XML config"}},
)
def get_label_studio_config(
    job_id: PathId, client: ClientPrincipal, session: ReadSession
) -> Response:
    """The job's Label Studio labeling config, to create a Label Studio project that accepts the
    job's `export?format=label-studio`: the config the job was created from, as sent, or the one
    Tessera generates for its schema."""
    job = service.get_job(session, client, job_id)
    view = label_studio.job_view(job, service.job_schema(job))
    return Response(
        view.config,
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="job-{job.id}-config.xml"'},
    )


@router.patch(
    "/{job_id}",
    response_model=schemas.JobOut,
    responses=problem_responses(JobFinished, JobFrozen, LabelSchemaLocked),
)
def update_job(
    job_id: PathId, body: schemas.JobUpdate, client: ClientPrincipal, session: DbSession
) -> schemas.JobOut:
    """Change a job. Schema, pricing, items per task, gold ratio and the external id field are
    frozen after activation."""
    job = service.update_job(session, service.get_job(session, client, job_id, lock=True), body)
    session.commit()
    return schemas.JobOut.of(job)


# --- status: draft -> active <-> paused -> completed | cancelled (one endpoint per move) -------


def _move(session: Session, client: Principal, job_id: int, action: str) -> schemas.JobOut:
    job = service.get_job(session, client, job_id, lock=True)
    was_draft = job.status is JobStatus.draft
    service.change_status(session, job, action, by=client.role)
    warnings = []
    if action == "activate" and was_draft:
        splitting.split_into_tasks(session, job)
        warnings = [w for w in [gold.thin_gold_warning(session, job)] if w]
    session.commit()
    return schemas.JobOut.of(job).model_copy(update={"warnings": warnings})


@router.post(
    "/{job_id}/activate",
    response_model=schemas.JobOut,
    responses=problem_responses(
        TransitionNotAllowed,
        JobHasNoItems,
        ResumeNeedsAdmin,
        (
            InsufficientFunds,
            "the client's funds cannot reserve the tasks' escrow, or a paused job's escrow "
            "cannot pay the fair-pay top-ups it owes",
        ),
    ),
)
def activate_job(job_id: PathId, client: ClientPrincipal, session: DbSession) -> schemas.JobOut:
    """Open the job to annotators: a draft (with at least one regular item) is split into tasks
    first; a paused job resumes (one paused because its client was suspended: by an admin
    only)."""
    return _move(session, client, job_id, "activate")


@router.post(
    "/{job_id}/pause",
    response_model=schemas.JobOut,
    responses=problem_responses(TransitionNotAllowed),
)
def pause_job(job_id: PathId, client: ClientPrincipal, session: DbSession) -> schemas.JobOut:
    """Stop handing out new tasks of an active job; work in flight may still be submitted."""
    return _move(session, client, job_id, "pause")


@router.post(
    "/{job_id}/complete",
    response_model=schemas.JobOut,
    responses=problem_responses(TransitionNotAllowed),
)
def complete_job(job_id: PathId, client: ClientPrincipal, session: DbSession) -> schemas.JobOut:
    """Close an active or paused job for good; results stay exportable."""
    return _move(session, client, job_id, "complete")


@router.post(
    "/{job_id}/cancel",
    response_model=schemas.JobOut,
    responses=problem_responses(TransitionNotAllowed),
)
def cancel_job(job_id: PathId, client: ClientPrincipal, session: DbSession) -> schemas.JobOut:
    """Cancel a job that is not finished; its open tasks are withdrawn."""
    return _move(session, client, job_id, "cancel")


# --- bans: the job's client (or an admin) keeps an annotator away from the job -------------


@router.get("/{job_id}/bans", response_model=list[qualification_schemas.BanOut])
def list_bans(
    job_id: PathId, client: ClientPrincipal, session: ReadSession
) -> list[qualification_schemas.BanOut]:
    """Every ban on the job, lifted and expired ones too."""
    job = service.get_job(session, client, job_id)
    return [qualification_schemas.BanOut.model_validate(b) for b in bans.list_bans(session, job)]


@router.post(
    "/{job_id}/bans",
    status_code=status.HTTP_201_CREATED,
    response_model=qualification_schemas.BanOut,
)
def ban_annotator(
    job_id: PathId,
    body: qualification_schemas.BanCreate,
    client: ClientPrincipal,
    session: DbSession,
) -> qualification_schemas.BanOut:
    """Ban an annotator from the job, until a time or for good, with a reason (a ban in force
    is replaced, and kept on record)."""
    job = service.get_job(session, client, job_id)
    ban = bans.ban_from_job(session, job, body, by_id=client.id)
    session.commit()
    return qualification_schemas.BanOut.model_validate(ban)


@router.delete("/{job_id}/bans/{annotator_id}", status_code=status.HTTP_204_NO_CONTENT)
def unban_annotator(
    job_id: PathId, annotator_id: PathId, client: ClientPrincipal, session: DbSession
) -> Response:
    """Lift the annotator's ban (recorded, not deleted)."""
    job = service.get_job(session, client, job_id)
    bans.lift_ban(session, job, annotator_id, by_id=client.id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- dataset import -------------------------------------------------------------------------


@router.post(
    "/{job_id}/items",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.ImportReport,
    responses={
        202: {
            "model": schemas.ImportAccepted,
            "description": "Large upload: imported by a background run; follow `status_url`",
        },
        **problem_responses(
            (JobFinished, "the job is completed or cancelled"),
            (LabelSchemaChanged, "the job's schema changed during the import"),
            (PayloadTooLarge, "upload larger than TESSERA_MAX_UPLOAD_BYTES"),
            (
                DecompressedTooLarge,
                "gzip upload expanding past TESSERA_MAX_DECOMPRESSED_BYTES",
            ),
            (UnsupportedMediaType, "unknown dataset format"),
            (ValidationFailed, "bad rows (all-or-nothing), each with its line and pointer"),
            (UnreadableFile, "a file that cannot be parsed, or not UTF-8"),
            (EmptyDataset, "no rows (an empty file, or a CSV header alone)"),
            (
                TooManyUnusableLines,
                "more blank or unparseable lines than TESSERA_IMPORT_MAX_UNUSABLE_LINES",
            ),
            (ExternalIdFieldMissing, "the CSV has no external id column"),
            (
                InsufficientFunds,
                "an import into an active job whose new tasks the client's funds cannot reserve",
            ),
        ),
    },
)
async def import_items(
    job_id: PathId,
    request: Request,
    client: ClientPrincipal,
    session: DbSession,
    db: Annotated[Database, Depends(get_database)],
    mode: importing.ImportMode = importing.ImportMode.all_or_nothing,
    format_: Annotated[dataset_files.ImportFormat | None, Query(alias="format")] = None,
    background: Annotated[
        bool | None, Query(description="Force (true) or forbid (false) a background import")
    ] = None,
    annotations: Annotated[
        label_studio.AnnotationUse,
        Query(
            description="Label Studio tasks: count their annotations (report) or make the "
            "ground-truth annotation, or the only one, the item's gold answer (gold)"
        ),
    ] = label_studio.AnnotationUse.report,
    external_id_field: Annotated[
        Annotated[FieldName, STORABLE] | None,
        Query(
            description="The column (CSV) or key (JSON) whose value is each row's external id, "
            "for this upload (default: the job's `external_id_field`, else `external_id`)"
        ),
    ] = None,
) -> Any:
    """Import a dataset (CSV with a header row, JSON array or JSONL; UTF-8, optionally gzip) as
    a multipart file field `file` or as the raw request body. Rows may carry `external_id`
    (re-upload is idempotent; or declare another column as the external id, on the job or
    with `external_id_field`), `gold_answer`, `prelabel` and `prelabel_score`; payload fields
    are the other keys (or a `data` object). A Label Studio JSON export is a dataset too: each
    task's `data` is the payload, its best prediction the pre-label, its `id` (or
    `meta.external_id`) the external id, and its annotations are counted or, with
    `annotations=gold`, give the gold answer. In `all-or-nothing` mode any bad row rejects the
    whole file (422, every bad row listed with its line and a pointer); `skip-invalid` imports
    the good rows. The file is read and checked before anything is written, then imported in
    one short transaction: nothing is ever half-imported. Uploads over
    TESSERA_IMPORT_INLINE_MAX_BYTES are imported in the background: 202 with the run to follow
    (rows read, accepted, rejected; then the same report or problem)."""
    settings: Settings = request.app.state.settings
    # Check access, then end the transaction: no lock is held while the upload streams in.
    await run_in_threadpool(_visible_job, session, client, job_id)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"Uploads are limited to {settings.max_upload_bytes} bytes")
    upload, filename, content_type = await _receive_upload(request, settings.max_upload_bytes)
    try:
        fmt = format_ or dataset_files.detect_format(filename, content_type)
        if fmt is None:
            raise UnsupportedMediaType(
                "Say which format the dataset is in: a file name ending in .csv, .json or .jsonl "
                "(optionally .gz), a Content-Type of text/csv, application/json or "
                "application/x-ndjson, or ?format=csv|json|jsonl"
            )
        size = upload.seek(0, 2)
        upload.seek(0)
        request_ = _ImportRequest(client, job_id, fmt, mode, annotations, external_id_field)
        if background if background is not None else size > settings.import_inline_max_bytes:
            run_id = await run_in_threadpool(_stage, session, settings, request_, upload)
            accepted = schemas.ImportAccepted(run_id=run_id, status_url=f"/v1/runs/{run_id}")
            return JSONResponse(
                accepted.model_dump(),
                status_code=status.HTTP_202_ACCEPTED,
                headers={"Location": accepted.status_url},
            )
        return await run_in_threadpool(_import, session, db, settings, request_, upload)
    finally:
        upload.close()


async def _receive_upload(request: Request, limit: int) -> tuple[IO[bytes], str | None, str | None]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=5)
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise BadRequest(
                "Send the dataset as a multipart file field named 'file'",
                errors=[{"pointer": "#/file", "detail": "missing"}],
            )
        if part.size is not None and part.size > limit:
            raise PayloadTooLarge(f"Uploads are limited to {limit} bytes")
        part.file.seek(0)
        return part.file, part.filename, part.content_type
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            spool.close()
            raise PayloadTooLarge(f"Uploads are limited to {limit} bytes")
        spool.write(chunk)
    spool.seek(0)
    return spool, None, content_type


def _visible_job(session: Session, principal: Principal, job_id: int) -> None:
    service.get_job(session, principal, job_id)
    session.commit()


@dataclass(frozen=True)
class _ImportRequest:
    principal: Principal
    job_id: int
    fmt: dataset_files.ImportFormat
    mode: importing.ImportMode
    annotations: label_studio.AnnotationUse
    external_id_field: str | None


def _import(
    session: Session,
    db: Database,
    settings: Settings,
    asked: _ImportRequest,
    upload: IO[bytes],
) -> schemas.ImportReport:
    # Phase one holds no lock: read the job, end the transaction, then read and check the file.
    job = service.get_job(session, asked.principal, asked.job_id)
    target = importing.ImportTarget.of(
        session, job, service.job_schema(job), asked.external_id_field
    )
    session.commit()
    # From here until phase two the session must not be touched: on SQLite any statement (a lazy
    # load too) would begin a write transaction and hold the write lock.
    with importing.check_dataset(
        target,
        upload,
        asked.fmt,
        asked.mode,
        limits=importing.ImportLimits.of(settings),
        look_up=importing.reading_look_up(db, target.job_id),
        annotations=asked.annotations,
    ) as staged:
        # Phase two: one short transaction, on the job as it is now.
        session.expire_all()
        job = service.get_job(session, asked.principal, asked.job_id, lock=True)
        result = importing.write_staged(session, job, staged)
        webhooks.record_import_finished(session, job, run_id=None, report=background.report(result))
        session.commit()
    return _report(result)


def _stage(session: Session, settings: Settings, asked: _ImportRequest, upload: IO[bytes]) -> int:
    job = service.get_job(session, asked.principal, asked.job_id)
    if job.status in (JobStatus.completed, JobStatus.cancelled):
        raise JobFinished(f"Cannot import into a {job.status.value} job")
    run_id = background.stage_import(
        session,
        settings,
        asked.principal.id,
        job.id,
        upload,
        asked.fmt,
        asked.mode,
        asked.annotations,
        external_id_field=asked.external_id_field,
    )
    session.commit()
    return run_id


def _report(result: importing.ImportResult) -> schemas.ImportReport:
    return schemas.ImportReport(
        format=result.format.value,
        mode=result.mode.value,
        rows_read=result.rows_read,
        accepted=result.accepted,
        created=result.created,
        unchanged=result.unchanged,
        rejected=result.rejected,
        gold=result.gold,
        errors=[schemas.RowError(**e) for e in result.errors],
        errors_truncated=result.errors_truncated,
        tasks_created=result.tasks_created,
        annotations=result.annotations,
        gold_from_annotations=result.gold_from_annotations,
    )


@router.get("/{job_id}/consensus", response_model=schemas.ConsensusOut)
def job_consensus(
    job_id: PathId, client: ClientPrincipal, session: ReadSession
) -> schemas.ConsensusOut:
    """The job's consensus method and its estimator's last fit."""
    job = service.get_job(session, client, job_id)
    fit = session.get(ConsensusFit, job.id)
    return schemas.ConsensusOut(
        method=job.consensus_method,
        fit=None
        if fit is None
        else schemas.ConsensusFitOut.model_validate(fit, from_attributes=True),
    )


@router.post(
    "/{job_id}/consensus/refit",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.RunAccepted,
)
def refit_job_consensus(
    job_id: PathId, client: ClientPrincipal, session: DbSession, response: Response
) -> schemas.RunAccepted:
    """Refit the job's estimator over all its answers now (it also runs while answers come in
    and when the job completes): every completed item's consensus is recomputed. A background
    run; follow `status_url`."""
    job = service.get_job(session, client, job_id)
    run = runs.create_run(session, kind="consensus_refit", owner_id=client.id)
    refits.request_refit(session, job.id, run_id=run.id)
    session.commit()
    accepted = schemas.RunAccepted(run_id=run.id, status_url=f"/v1/runs/{run.id}")
    response.headers["Location"] = accepted.status_url
    return accepted


@router.get("/{job_id}/progress", response_model=schemas.Progress)
def job_progress(job_id: PathId, client: ClientPrincipal, session: ReadSession) -> schemas.Progress:
    """Counts of items, tasks and assignments by state, consensus reached, and an estimated
    completion time from the last hour's throughput."""
    return progress.job_progress(session, service.get_job(session, client, job_id))


MEDIA_TYPES = {
    "jsonl": ("application/x-ndjson", "jsonl"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "label-studio": ("application/json", "json"),
    "coco": ("application/json", "json"),
}


@router.get(
    "/{job_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {m: {} for m, _ in MEDIA_TYPES.values()},
            "headers": {
                "Tessera-Consensus-Method": {
                    "description": "The consensus method of the results",
                    "schema": {"type": "string"},
                },
                "Tessera-Consensus-Fit-Version": {
                    "description": "The job's consensus fit the results reflect (`none`: never "
                    "fitted, the consensus is the online vote)",
                    "schema": {"type": "string"},
                },
                "Tessera-Consensus-Fitted-At": {
                    "description": "When that fit was made (absent before the first fit)",
                    "schema": {"type": "string", "format": "date-time"},
                },
            },
        },
        **problem_responses(ExportFormatUnavailable),
    },
)
def export_results(
    job_id: PathId,
    client: ClientPrincipal,
    session: ReadSession,
    db: Annotated[Database, Depends(get_database)],
    format_: Annotated[schemas.ExportFormat, Query(alias="format")] = "jsonl",
    include_gold: bool = False,
) -> StreamingResponse:
    """Results per item (payload, external id, consensus, confidence, answer count, raw answers
    with pseudonymous annotator ids), streamed as JSONL, flattened CSV, Label Studio JSON (tasks
    for a project made from `label-studio-config`: one annotation per answer, the consensus and
    pre-label as predictions, pseudonyms in `meta`), or COCO (jobs with a boxes control).
    The `Tessera-Consensus-*` headers name the consensus fit the results reflect."""
    job = service.get_job(session, client, job_id)
    schema = service.job_schema(job)
    targets = label_studio.job_view(job, schema).targets if format_ == "label-studio" else None
    body = export.stream_export(
        db, job.id, job.client_id, schema, format_, include_gold, targets=targets
    )
    media_type, extension = MEDIA_TYPES[format_]
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="job-{job.id}.{extension}"',
            **results.fit_headers(results.current_fit(session, job.id), job.consensus_method),
        },
    )
