"""Background work of the jobs domain: large dataset imports.

An upload too big to import inside its request is staged in `TESSERA_UPLOAD_DIR` and imported by
the `jobs.import` job, which reports to a background run (`GET /v1/runs/{id}`): rows read,
accepted and rejected while it goes, and the import report or the problem (every bad row with its
line) at the end.

The job reads and checks the file in its `prepare` step, outside the unit of work, so no lock is
held meanwhile (on SQLite the unit of work holds the only write lock), and progress is written in
short transactions of its own. The unit of work then inserts the checked rows in one short
transaction, so an all-or-nothing import with bad rows, or a crash, leaves the job as it was. A
refused import (any `TesseraError`: bad rows, a hostile file, a finished job) rolls back to a
savepoint, and the run's failure and the client's `import.finished` webhook event are recorded in
that same transaction; it is not retried. Anything else (a bug, a lost database connection) is
retried at most IMPORT_RETRIES times, after which the engine fails the run: a run never stays
"running" for a file that cannot be imported.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.background import JobContext, PrepareContext, background_job, enqueue
from app.core.errors import Conflict, TesseraError
from app.core.settings import Settings
from app.jobs import dataset_files, importing
from app.jobs.errors import StagedUploadGone
from app.jobs.label_studio import AnnotationUse
from app.jobs.service import job_schema
from app.models.jobs import Job
from app.runs import service as runs
from app.webhooks import service as webhooks

IMPORT_JOB = "jobs.import"
# A failure that is not a refusal is a lost connection (worth another try) or a bug that the same
# file hits again: two retries (about 15 s and 30 s later by default), then the run fails.
IMPORT_RETRIES = 2
PROGRESS_EVERY_SECONDS = 1.0
# Imports queued by release 0.1 carry the format and mode as positions in these tuples (the enums'
# order then); one may still be pending when the next release starts, so `run_import` reads both
# forms. Drop these after one release.
_LEGACY_FORMATS = (
    dataset_files.ImportFormat.csv,
    dataset_files.ImportFormat.json,
    dataset_files.ImportFormat.jsonl,
)
_LEGACY_MODES = (importing.ImportMode.all_or_nothing, importing.ImportMode.skip_invalid)


def staged_path(settings: Settings, run_id: int) -> Path:
    return settings.upload_dir / f"import-{run_id}.upload"


def _options_path(settings: Settings, run_id: int) -> Path:
    """Options of the upload that are free text (a column name), beside the staged file: job
    arguments are ids and slugs only."""
    return settings.upload_dir / f"import-{run_id}.options.json"


def stage_import(
    session: Session,
    settings: Settings,
    owner_id: int,
    job_id: int,
    upload: IO[bytes],
    fmt: dataset_files.ImportFormat,
    mode: importing.ImportMode,
    annotations: AnnotationUse = AnnotationUse.report,
    *,
    external_id_field: str | None = None,
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
    if external_id_field is not None:
        options = {"external_id_field": external_id_field}
        _options_path(settings, run.id).write_text(json.dumps(options))
    return run.id


def _discard(settings: Settings, run_id: int) -> None:
    staged_path(settings, run_id).unlink(missing_ok=True)
    _options_path(settings, run_id).unlink(missing_ok=True)


@dataclass(frozen=True)
class _Checked:
    """What the prepare step found: the checked rows, or why the file is refused."""

    staged: importing.StagedImport | None
    problem: TesseraError | None


@contextmanager
def _check_staged_upload(
    ctx: PrepareContext,
    run_id: int,
    job_id: int,
    fmt: str | int,
    mode: str | int,
    annotations: str = AnnotationUse.report.value,
) -> Iterator[_Checked]:
    """Read and check the staged upload, holding no lock (the prepare step of `run_import`)."""
    path = staged_path(ctx.settings, run_id)
    if not path.exists():
        raise StagedUploadGone("The staged upload is gone; upload the file again")
    options_path = _options_path(ctx.settings, run_id)
    options = json.loads(options_path.read_text()) if options_path.exists() else {}
    with ctx.db.read_session() as session:
        job = session.get(Job, job_id)
        if job is None:
            _discard(ctx.settings, run_id)
            raise Conflict("The job no longer exists")
        target = importing.ImportTarget.of(
            session, job, job_schema(job), options.get("external_id_field")
        )
    try:
        with path.open("rb") as data:
            staged = importing.check_dataset(
                target,
                data,
                _LEGACY_FORMATS[fmt] if isinstance(fmt, int) else dataset_files.ImportFormat(fmt),
                _LEGACY_MODES[mode] if isinstance(mode, int) else importing.ImportMode(mode),
                limits=importing.ImportLimits.of(ctx.settings),
                look_up=importing.reading_look_up(ctx.db, job_id),
                annotations=AnnotationUse(annotations),
                progress=_progress_reporter(ctx, run_id),
            )
    except TesseraError as exc:
        yield _Checked(None, exc)
        return
    with staged:
        yield _Checked(staged, None)


@background_job(
    IMPORT_JOB,
    queue="imports",
    time_limit=timedelta(hours=2),
    max_retries=IMPORT_RETRIES,
    prepare=_check_staged_upload,
)
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
    argument existed count them). The prepare step has read and checked the file."""
    checked: _Checked = ctx.prepared
    job = ctx.session.get(Job, job_id, with_for_update=True)
    if job is None:
        _discard(ctx.settings, run_id)
        raise Conflict("The job no longer exists")
    try:
        if checked.problem is not None:
            raise checked.problem
        assert checked.staged is not None
        # In a savepoint: a failed import rolls back alone, and its failure is recorded in
        # this transaction (the run fails with the problem; webhooks hear `import.finished`).
        with ctx.session.begin_nested():
            result = importing.write_staged(ctx.session, job, checked.staged)
    except TesseraError as exc:
        _discard(ctx.settings, run_id)
        runs.fail_run(ctx.session, run_id, exc)
        webhooks.record_import_finished(ctx.session, job, run_id=run_id, problem=exc.to_problem())
        return
    runs.set_progress(ctx.session, run_id, **_counters(result))
    runs.finish_run(ctx.session, run_id, result=report(result))
    webhooks.record_import_finished(ctx.session, job, run_id=run_id, report=report(result))
    settings = ctx.settings
    event.listen(ctx.session, "after_commit", lambda _: _discard(settings, run_id), once=True)


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


def _progress_reporter(ctx: PrepareContext, run_id: int) -> importing.ProgressCallback:
    """Progress goes through short transactions of its own (at most one a second), so the
    client sees it while the file is read; nothing else is written meanwhile."""
    last = time.monotonic()

    def report_progress(result: importing.ImportResult) -> None:
        nonlocal last
        if time.monotonic() - last < PROGRESS_EVERY_SECONDS:
            return
        last = time.monotonic()
        with ctx.db.transaction() as side:
            runs.set_progress(side, run_id, **_counters(result))

    return report_progress
