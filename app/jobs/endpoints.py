"""HTTP for clients' jobs: create, read, update, status, dataset import, progress, export."""

from __future__ import annotations

import tempfile
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.core.db import Database
from app.core.errors import BadRequest, Conflict, PayloadTooLarge, UnsupportedMediaType
from app.core.pagination import Page, PageParams, page_params
from app.core.security import ClientPrincipal, DbSession, Principal, ReadSession, get_database
from app.core.settings import Settings
from app.jobs import background, export, importing, progress, schemas, service, splitting
from app.jobs.label_schema import BoxesControl, KeypointsControl, PolygonsControl
from app.models.jobs import JobStatus
from app.webhooks import service as webhooks

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

Paging = Annotated[PageParams, Depends(page_params)]
SPOOL_IN_MEMORY = 8 * 1024 * 1024


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.JobOut)
def create_job(
    body: schemas.JobCreate, client: ClientPrincipal, session: DbSession
) -> schemas.JobOut:
    """Create a draft job. `label_schema` is a schema document or a Label Studio XML config."""
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
def get_job(job_id: int, client: ClientPrincipal, session: ReadSession) -> schemas.JobOut:
    return schemas.JobOut.of(service.get_job(session, client, job_id))


@router.patch("/{job_id}", response_model=schemas.JobOut)
def update_job(
    job_id: int, body: schemas.JobUpdate, client: ClientPrincipal, session: DbSession
) -> schemas.JobOut:
    """Change a job. Schema, pricing, items per task and gold ratio are frozen after activation."""
    job = service.update_job(session, service.get_job(session, client, job_id, lock=True), body)
    session.commit()
    return schemas.JobOut.of(job)


def _transition(action: str) -> Any:
    def move(job_id: int, client: ClientPrincipal, session: DbSession) -> schemas.JobOut:
        job = service.get_job(session, client, job_id, lock=True)
        was_draft = job.status is JobStatus.draft
        service.change_status(session, job, action, by=client.role)
        if action == "activate" and was_draft:
            splitting.split_into_tasks(session, job)
        session.commit()
        return schemas.JobOut.of(job)

    move.__name__ = f"{action}_job"
    move.__doc__ = {
        "activate": "Open the job to annotators (a draft is split into tasks first; a paused "
        "job resumes).",
        "pause": "Stop handing out new tasks; work in flight may still be submitted.",
        "complete": "Close the job for good; results stay exportable.",
        "cancel": "Cancel the job; open tasks are withdrawn.",
    }[action]
    return move


for _action in ("activate", "pause", "complete", "cancel"):
    router.add_api_route(
        f"/{{job_id}}/{_action}",
        _transition(_action),
        methods=["POST"],
        response_model=schemas.JobOut,
    )


@router.post(
    "/{job_id}/items",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.ImportReport,
    responses={
        202: {
            "model": schemas.ImportAccepted,
            "description": "Large upload: imported by a background run; follow `status_url`",
        },
        413: {"description": "Upload larger than TESSERA_MAX_UPLOAD_BYTES"},
        415: {"description": "Unknown dataset format"},
        422: {"description": "Bad rows (all-or-nothing) or an unreadable file"},
    },
)
async def import_items(
    job_id: int,
    request: Request,
    client: ClientPrincipal,
    session: DbSession,
    mode: importing.ImportMode = importing.ImportMode.all_or_nothing,
    format_: Annotated[importing.ImportFormat | None, Query(alias="format")] = None,
    background: Annotated[
        bool | None, Query(description="Force (true) or forbid (false) a background import")
    ] = None,
) -> Any:
    """Import a dataset (CSV with a header row, JSON array or JSONL; optionally gzip) as a
    multipart file field `file` or as the raw request body. Rows may carry `external_id`
    (re-upload is idempotent), `gold_answer`, `prelabel` and `prelabel_score`; payload fields are
    the other keys (or a `data` object). In `all-or-nothing` mode any bad row rejects the whole
    file (422, every bad row listed with its line); `skip-invalid` imports the good rows.
    Uploads over TESSERA_IMPORT_INLINE_MAX_BYTES are imported in the background: 202 with the
    run to follow (rows read, accepted, rejected; then the same report or problem)."""
    settings: Settings = request.app.state.settings
    # Check access, then end the transaction: no lock is held while the upload streams in.
    await run_in_threadpool(_visible_job, session, client, job_id)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"Uploads are limited to {settings.max_upload_bytes} bytes")
    upload, filename, content_type = await _receive_upload(request, settings.max_upload_bytes)
    try:
        fmt = format_ or importing.detect_format(filename, content_type)
        if fmt is None:
            raise UnsupportedMediaType(
                "Say which format the dataset is in: a file name ending in .csv, .json or .jsonl "
                "(optionally .gz), a Content-Type of text/csv, application/json or "
                "application/x-ndjson, or ?format=csv|json|jsonl"
            )
        size = upload.seek(0, 2)
        upload.seek(0)
        if background if background is not None else size > settings.import_inline_max_bytes:
            run_id = await run_in_threadpool(
                _stage, session, settings, client, job_id, upload, fmt, mode
            )
            accepted = schemas.ImportAccepted(run_id=run_id, status_url=f"/v1/runs/{run_id}")
            return JSONResponse(
                accepted.model_dump(),
                status_code=status.HTTP_202_ACCEPTED,
                headers={"Location": accepted.status_url},
            )
        return await run_in_threadpool(_import, session, client, job_id, upload, fmt, mode)
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


def _import(
    session: Session,
    principal: Principal,
    job_id: int,
    upload: IO[bytes],
    fmt: importing.ImportFormat,
    mode: importing.ImportMode,
) -> schemas.ImportReport:
    job = service.get_job(session, principal, job_id, lock=True)
    result = importing.import_dataset(session, job, service.job_schema(job), upload, fmt, mode)
    webhooks.record_import_finished(session, job, run_id=None, report=background.report(result))
    session.commit()
    return _report(result)


def _stage(
    session: Session,
    settings: Settings,
    principal: Principal,
    job_id: int,
    upload: IO[bytes],
    fmt: importing.ImportFormat,
    mode: importing.ImportMode,
) -> int:
    job = service.get_job(session, principal, job_id)
    if job.status in (JobStatus.completed, JobStatus.cancelled):
        raise Conflict(f"Cannot import into a {job.status.value} job")
    run_id = background.stage_import(session, settings, principal.id, job.id, upload, fmt, mode)
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
    )


@router.get("/{job_id}/progress", response_model=schemas.Progress)
def job_progress(job_id: int, client: ClientPrincipal, session: ReadSession) -> schemas.Progress:
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
    responses={200: {"content": {m: {} for m, _ in MEDIA_TYPES.values()}}},
)
def export_results(
    job_id: int,
    client: ClientPrincipal,
    session: ReadSession,
    db: Annotated[Database, Depends(get_database)],
    format_: Annotated[schemas.ExportFormat, Query(alias="format")] = "jsonl",
    include_gold: bool = False,
) -> StreamingResponse:
    """Results per item (payload, external id, consensus, confidence, answer count, raw answers
    with pseudonymous annotator ids), streamed as JSONL, flattened CSV, Label Studio JSON, or
    COCO (jobs with a boxes control)."""
    job = service.get_job(session, client, job_id)
    body = stream_export(db, job.id, job.client_id, service.job_schema(job), format_, include_gold)
    media_type, extension = MEDIA_TYPES[format_]
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="job-{job.id}.{extension}"'},
    )


def stream_export(
    db: Database, job_id: int, client_id: int, schema: Any, fmt: str, include_gold: bool
) -> Any:
    """The export body for `fmt` (also used by `tessera export`)."""

    def lines() -> Any:
        return export.export_jsonl(db, job_id, client_id, include_gold=include_gold)

    if fmt == "jsonl":
        return lines()
    if fmt == "csv":
        return export.export_csv(export.iter_records(lines()), schema)
    if fmt == "label-studio":
        unsized = [
            c.name
            for c in schema.controls
            if isinstance(c, BoxesControl | PolygonsControl | KeypointsControl)
            and not (c.width_field and c.height_field)
        ]
        if unsized:
            raise Conflict(
                "Label Studio stores shapes in percent of the image size, and the schema does not "
                f"say where the image size is for {', '.join(unsized)} (width_field and "
                "height_field); export as JSONL, CSV or COCO instead"
            )
        return export.export_label_studio(export.iter_records(lines()), schema)
    boxes = next((c for c in schema.controls if isinstance(c, BoxesControl)), None)
    if boxes is None:
        raise Conflict("COCO export needs a job with a boxes control")
    return export.export_coco((export.iter_records(lines()), export.iter_records(lines())), boxes)
