"""Background work of the jobs domain: large dataset imports.

An upload too big to import inside its request is staged in `TESSERA_UPLOAD_DIR` and imported by
the `jobs.import` job, which reports to a background run (`GET /v1/runs/{id}`): rows read,
accepted and rejected while it goes (on PostgreSQL, from a second connection), and the import
report or the problem (every bad row with its line) at the end. The import is one transaction, so
an all-or-nothing import with bad rows, or a crash, leaves the job as it was. A rejected import
rolls back to a savepoint, so the run's failure and the client's `import.finished` webhook
event are recorded in that same transaction.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.background import JobContext, background_job, enqueue
from app.core.errors import Conflict, StagedUploadGone, TesseraError
from app.core.settings import Settings
from app.jobs import importing
from app.jobs.label_studio import AnnotationUse
from app.jobs.service import job_schema
from app.models.jobs import Job
from app.runs import service as runs
from app.webhooks import service as webhooks

IMPORT_JOB = "jobs.import"
# Imports queued by release 0.1 carry the format and mode as positions in these tuples (the enums'
# order then); one may still be pending when the next release starts, so `run_import` reads both
# forms. Drop these after one release.
_LEGACY_FORMATS = (
    importing.ImportFormat.csv,
    importing.ImportFormat.json,
    importing.ImportFormat.jsonl,
)
_LEGACY_MODES = (importing.ImportMode.all_or_nothing, importing.ImportMode.skip_invalid)


def staged_path(settings: Settings, run_id: int) -> Path:
    return settings.upload_dir / f"import-{run_id}.upload"


def stage_import(
    session: Session,
    settings: Settings,
    owner_id: int,
    job_id: int,
    upload: IO[bytes],
    fmt: importing.ImportFormat,
    mode: importing.ImportMode,
    annotations: AnnotationUse = AnnotationUse.report,
) -> int:
    """Queue an import of `upload` into job `job_id` as a background run; returns the run id.
    The file is copied to the upload directory before the caller commits."""
    run = runs.create_run(session, kind="import", owner_id=owner_id)
    enqueue(
        session, IMPORT_JOB, run.id, job_id, fmt.value, mode.value, annotations.value, run_id=run.id
    )
    path = staged_path(settings, run.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    upload.seek(0)
    with path.open("wb") as staged:
        shutil.copyfileobj(upload, staged, 1 << 20)
    return run.id


@background_job(IMPORT_JOB, queue="imports", time_limit=timedelta(hours=2))
def run_import(
    ctx: JobContext,
    run_id: int,
    job_id: int,
    fmt: str | int,
    mode: str | int,
    annotations: str = AnnotationUse.report.value,
) -> None:
    """Import a staged upload into job `job_id` in format `fmt` and mode `mode` (their values,
    e.g. "csv" and "skip-invalid"; an int is the legacy position form, see `_LEGACY_FORMATS`),
    using Label Studio tasks' annotations as `annotations` says (jobs queued before that
    argument existed count them)."""
    path = staged_path(ctx.settings, run_id)
    try:
        if not path.exists():
            raise StagedUploadGone("The staged upload is gone; upload the file again")
        job = ctx.session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise Conflict("The job no longer exists")
    except TesseraError:
        path.unlink(missing_ok=True)
        raise
    try:
        # In a savepoint: a failed import rolls back alone, and its failure is recorded in
        # this transaction (the run fails with the problem; webhooks hear `import.finished`).
        with ctx.session.begin_nested(), path.open("rb") as data:
            result = importing.import_dataset(
                ctx.session,
                job,
                job_schema(job),
                data,
                _LEGACY_FORMATS[fmt] if isinstance(fmt, int) else importing.ImportFormat(fmt),
                _LEGACY_MODES[mode] if isinstance(mode, int) else importing.ImportMode(mode),
                annotations=AnnotationUse(annotations),
                progress=_progress_reporter(ctx.session, run_id),
            )
    except TesseraError as exc:
        path.unlink(missing_ok=True)
        runs.fail_run(ctx.session, run_id, exc)
        webhooks.record_import_finished(ctx.session, job, run_id=run_id, problem=exc.to_problem())
        return
    runs.set_progress(ctx.session, run_id, **_counters(result))
    runs.finish_run(ctx.session, run_id, result=report(result))
    webhooks.record_import_finished(ctx.session, job, run_id=run_id, report=report(result))
    event.listen(ctx.session, "after_commit", lambda _: path.unlink(missing_ok=True), once=True)


def report(result: importing.ImportResult) -> dict[str, Any]:
    return {
        "format": result.format.value,
        "mode": result.mode.value,
        "rows_read": result.rows_read,
        "accepted": result.accepted,
        "created": result.created,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "gold": result.gold,
        "errors": result.errors,
        "errors_truncated": result.errors_truncated,
        "tasks_created": result.tasks_created,
        "annotations": result.annotations,
        "gold_from_annotations": result.gold_from_annotations,
    }


def _counters(result: importing.ImportResult) -> dict[str, int]:
    return {"rows_read": result.rows_read, "accepted": result.accepted, "rejected": result.rejected}


def _progress_reporter(session: Session, run_id: int) -> importing.ProgressCallback | None:
    """Progress goes through a second connection so the client sees it while the import's own
    transaction is open. SQLite has one writer (the import), so there it shows at the end."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return None

    def report_progress(result: importing.ImportResult) -> None:
        with Session(bind=bind) as side:
            runs.set_progress(side, run_id, **_counters(result))
            side.commit()

    return report_progress
