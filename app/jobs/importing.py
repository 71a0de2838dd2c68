"""Dataset import: CSV, JSON array or JSONL (optionally gzip), streamed with bounded memory.

An import runs in two phases so that no lock is held while the file is read (on SQLite, the
embedded default, a write transaction holds the database's only write lock from its first
statement, and the whole import used to hold it):

1. `check_dataset` reads (`dataset_files`), parses and checks every row against the fields the
   label schema needs (`dataset_rows`), with no transaction open beyond short reads, and stages
   the good rows on disk (`staging`). An all-or-nothing import with a bad row fails here,
   having written nothing. This is most of the time.
2. `write_staged` inserts the staged rows in the caller's transaction (the job's row locked), in
   one statement per database, and splits them into tasks if the job is active. A failure rolls
   the whole import back with the caller's transaction.

Measured with 1,000,000 JSONL rows on a 2-core machine (load about 2): 12–16 s for phase one,
2–3 s for phase two on SQLite (the only time the write lock is held), 14–19 s in all, against
about 12 s before, all of it under the lock (`tests/jobs/test_import_responsiveness.py` shows
others' claims, submits and job creations going on meanwhile).

Re-uploading a row with an external id already imported with the same content is a no-op; with
different content it is a bad row. The external id is a row's `external_id` key, or the column
the job (or the upload) declares as its external id. A row that is a Label Studio task (a JSON
export of Label Studio, or of Tessera in Label Studio format) is read by `label_studio.read_task`.

Hostile files are refused early, each with its own problem type: a gzip upload expanding past
TESSERA_MAX_DECOMPRESSED_BYTES (413 `decompressed-too-large`), more than
TESSERA_IMPORT_MAX_UNUSABLE_LINES blank, empty or unparseable lines (422
`too-many-unusable-lines`: a few hundred KB of gzip can hold hundreds of MB of blank lines), a
file with no rows (422 `empty-dataset`), a file that cannot be read (422 `unreadable-dataset`,
see `dataset_files`). Strings neither database can store (NUL, unpaired surrogates) and values
nested deeper than `storable.MAX_JSON_DEPTH` are bad rows with a pointer, refused the same on
both databases (`app.core.storable`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db import Database, session_settings
from app.core.errors import ValidationFailed, json_pointer
from app.core.settings import Settings
from app.jobs.dataset_files import BLANK, ImportFormat, RowError, open_upload, read_rows
from app.jobs.dataset_rows import ItemRow, RowChecker
from app.jobs.errors import EmptyDataset, JobFinished, LabelSchemaChanged, TooManyUnusableLines
from app.jobs.label_studio import AnnotationUse
from app.jobs.splitting import split_into_tasks
from app.jobs.staging import (
    Content,
    StagedRow,
    StagedRows,
    is_unique_violation,
    item_store,
    known_items,
)
from app.label_schema import LabelSchema
from app.models.jobs import Item, Job, JobStatus

BATCH_ROWS = 5000
MAX_REPORTED_ERRORS = 1000
FINISHED = (JobStatus.completed, JobStatus.cancelled)


class ImportMode(StrEnum):
    all_or_nothing = "all-or-nothing"
    skip_invalid = "skip-invalid"


@dataclass(frozen=True)
class ImportLimits:
    max_decompressed_bytes: int
    max_unusable_lines: int

    @classmethod
    def of(cls, settings: Settings) -> ImportLimits:
        return cls(settings.decompressed_bytes_limit, settings.import_max_unusable_lines)


@dataclass
class ImportResult:
    format: ImportFormat
    mode: ImportMode
    rows_read: int = 0
    created: int = 0
    unchanged: int = 0
    rejected: int = 0
    gold: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Label Studio tasks: their annotations (not cancelled), and how many gave a gold answer.
    annotations: int = 0
    gold_from_annotations: int = 0
    unusable_lines: int = 0  # blank, empty or unparseable

    @property
    def accepted(self) -> int:
        return self.created + self.unchanged

    tasks_created: int = 0

    @property
    def errors_truncated(self) -> bool:
        return self.rejected > len(self.errors)

    def reject(self, line: int, detail: str, pointer: str | None = None) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            entry: dict[str, Any] = {"line": line, "detail": detail}
            if pointer:
                entry["pointer"] = pointer
            self.errors.append(entry)

    def invalid(self) -> ValidationFailed:
        """The problem of an all-or-nothing import with bad rows."""
        return ValidationFailed(
            f"{self.rejected} of {self.rows_read} rows are invalid; nothing was imported "
            "(use mode=skip-invalid to import the valid rows)",
            errors=self.errors,
            rows_read=self.rows_read,
            rejected=self.rejected,
            errors_truncated=self.errors_truncated,
        )


# --- the two phases -----------------------------------------------------------------------------

ProgressCallback = Callable[[ImportResult], None]
LookUp = Callable[[Sequence[str]], dict[str, Content]]


@dataclass(frozen=True)
class ImportTarget:
    """The job as the reading phase saw it; the writing phase checks it did not change."""

    job_id: int
    status: JobStatus
    label_schema: dict[str, Any]
    schema: LabelSchema
    external_id_field: str | None  # the job's, or the upload's own
    has_items: bool

    @classmethod
    def of(
        cls, session: Session, job: Job, schema: LabelSchema, external_id_field: str | None = None
    ) -> ImportTarget:
        """`external_id_field` overrides the job's declared one for this upload."""
        has_items = session.scalar(select(Item.id).where(Item.job_id == job.id).limit(1))
        return cls(
            job.id,
            job.status,
            job.label_schema,
            schema,
            external_id_field or job.external_id_field,
            has_items is not None,
        )


class StagedImport:
    """A checked dataset waiting for `write_staged`: the report so far and the staged rows.
    Closing it deletes the staged rows."""

    def __init__(self, target: ImportTarget, result: ImportResult, rows: StagedRows) -> None:
        self.target, self.result, self.rows = target, result, rows

    def close(self) -> None:
        self.rows.close()

    def __enter__(self) -> StagedImport:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def reading_look_up(db: Database, job_id: int) -> LookUp:
    """Look up the job's items by external id, each batch in a short read-only transaction
    (on SQLite a reader neither waits for the writer nor blocks it)."""

    def look_up(ids: Sequence[str]) -> dict[str, Content]:
        with db.read_session() as session:
            return known_items(session, job_id, ids)

    return look_up


def check_dataset(
    target: ImportTarget,
    binary: IO[bytes],
    fmt: ImportFormat,
    mode: ImportMode = ImportMode.all_or_nothing,
    *,
    limits: ImportLimits,
    look_up: LookUp,
    annotations: AnnotationUse = AnnotationUse.report,
    progress: ProgressCallback | None = None,
) -> StagedImport:
    """Phase one: read `binary`, check every row and stage the good ones, holding no lock.

    Every bad row is counted and (the first MAX_REPORTED_ERRORS) reported with its line. In
    all-or-nothing mode a bad row raises ValidationFailed listing every bad row (staging stops
    at the first one; reading goes on to report the rest). Raises the file-level problems:
    UnreadableFile, DecompressedTooLarge, TooManyUnusableLines, EmptyDataset,
    ExternalIdFieldMissing, JobFinished. `look_up` finds the job's items by external id (only
    asked when the job had items)."""
    if target.status in FINISHED:
        raise JobFinished(f"Cannot import into a {target.status.value} job")
    result = ImportResult(format=fmt, mode=mode)
    checker = RowChecker(
        target.schema, fmt, annotations, external_id_field=target.external_id_field
    )
    staged = StagedRows()
    sources: list[LookUp] = [staged.find] + ([look_up] if target.has_items else [])
    id_pointer = _id_pointer(target)
    batch: list[ItemRow] = []

    def flush() -> None:
        fresh = _drop_known(batch, result, sources, id_pointer)
        if not (mode is ImportMode.all_or_nothing and result.rejected):
            rows: list[StagedRow] = []
            for row in fresh:
                try:
                    rows.append(row.staged())
                except RowError as exc:
                    result.reject(row.line, exc.detail, exc.pointer)
                    continue
                # Counted as created now; `write_staged` corrects for rows it finds imported.
                result.created += 1
                result.gold += row.gold_answer is not None
                result.annotations += row.annotations
                result.gold_from_annotations += row.gold_from_annotations
            staged.add(rows)
        batch.clear()
        if progress is not None:
            progress(result)

    def unusable(line: int) -> None:
        result.unusable_lines += 1
        if result.unusable_lines > limits.max_unusable_lines:
            raise TooManyUnusableLines(
                f"More than {limits.max_unusable_lines} lines are blank, empty or cannot be "
                f"parsed (the last at line {line}); nothing was imported. Is the file in the "
                f"format named ({fmt.value})?",
                errors=result.errors[:20],
                rows_read=result.rows_read,
                unusable_lines=result.unusable_lines,
            )

    try:
        rows = read_rows(
            open_upload(binary, limits.max_decompressed_bytes),
            fmt,
            csv_columns=[target.external_id_field] if target.external_id_field else [],
        )
        for line, row in rows:
            if row is BLANK:
                unusable(line)
                continue
            result.rows_read += 1
            try:
                batch.append(checker.check(line, row))
            except RowError as exc:
                result.reject(line, exc.detail, exc.pointer)
                if exc.unusable:
                    unusable(line)
            if len(batch) >= BATCH_ROWS:
                flush()
        flush()
        if result.rows_read == 0:
            raise EmptyDataset(
                "The file holds no rows"
                + (" (a CSV header alone)" if fmt is ImportFormat.csv else "")
                + "; nothing was imported"
            )
        if mode is ImportMode.all_or_nothing and result.rejected:
            raise result.invalid()
    except BaseException:
        staged.close()
        raise
    return StagedImport(target, result, staged)


def _drop_known(
    batch: list[ItemRow], result: ImportResult, sources: Sequence[LookUp], id_pointer: str
) -> list[ItemRow]:
    """Rows of the batch not seen before: a row whose external id came earlier (in this batch,
    or in `sources`: earlier in the file, or in the job) is unchanged when identical and
    rejected when different."""
    ids = [r.external_id for r in batch if r.external_id is not None]
    earlier: dict[str, Content | ItemRow] = {}
    if ids:
        for source in sources:
            earlier.update(source(ids))
    fresh: list[ItemRow] = []
    for row in batch:
        if row.external_id is not None:
            known = earlier.get(row.external_id)
            if known is not None:
                _repeated(row.line, row.external_id, row.same_content(known), result, id_pointer)
                continue
            earlier[row.external_id] = row
        fresh.append(row)
    return fresh


def _repeated(
    line: int, external_id: str, same: bool, result: ImportResult, id_pointer: str
) -> None:
    if same:
        result.unchanged += 1
    else:
        result.reject(
            line, f"external id {external_id!r} was already imported with other content", id_pointer
        )


def _id_pointer(target: ImportTarget) -> str:
    """Where a row's external id is: the declared field, or its `external_id` key."""
    return json_pointer([target.external_id_field or "external_id"])


def write_staged(session: Session, job: Job, staged: StagedImport) -> ImportResult:
    """Phase two: insert the staged rows as items of `job` (whose row the caller has locked) in
    the session's transaction and, if the job is active, split the new items into tasks. The
    caller commits, or rolls back on an exception (nothing is kept).

    Raises JobFinished, LabelSchemaChanged (the job changed since `staged` was checked), and,
    in all-or-nothing mode, ValidationFailed when an import that committed meanwhile gave the
    job some of the same external ids with other content (with the same content they count as
    unchanged)."""
    target, result = staged.target, staged.result
    if job.status in FINISHED:
        raise JobFinished(f"Cannot import into a {job.status.value} job")
    if job.label_schema != target.label_schema:
        raise LabelSchemaChanged(
            "The job's label schema changed while the file was being checked; nothing was "
            "imported: upload it again"
        )
    store = item_store(session)
    try:
        with session.begin_nested():
            session.connection()  # emits the SAVEPOINT now; the session is lazy
            created = store.insert(session, job.id, staged.rows, frozenset())
    except Exception as exc:
        if not is_unique_violation(exc):
            raise
        # Another import gave the job some of these external ids after this one looked (the
        # unique index caught it): compare with them now, under the job's lock, and skip them.
        skip = _imported_meanwhile(session, job.id, staged)
        if result.mode is ImportMode.all_or_nothing and result.rejected:
            raise result.invalid() from None
        created = store.insert(session, job.id, staged.rows, skip)
    if created != result.created:  # the staged rows and their count disagree: a bug
        raise RuntimeError(f"inserted {created} items, expected {result.created}")
    if job.status is JobStatus.active:
        result.tasks_created = split_into_tasks(session, job)
    return result


def _imported_meanwhile(session: Session, job_id: int, staged: StagedImport) -> frozenset[str]:
    """The staged external ids the job has now, each counted as unchanged or rejected (and no
    longer as created)."""
    result, pointer = staged.result, _id_pointer(staged.target)
    found: set[str] = set()
    for ids in staged.rows.external_ids():
        theirs = known_items(session, job_id, ids)
        if not theirs:
            continue
        for external_id, mine in staged.rows.find(list(theirs)).items():
            assert mine.line is not None
            result.created -= 1
            result.gold -= mine.gold_answer is not None
            result.annotations -= mine.annotations
            result.gold_from_annotations -= mine.gold_from_annotations
            same = mine.same_content(theirs[external_id])
            _repeated(mine.line, external_id, same, result, pointer)
        found.update(theirs)
    return frozenset(found)


def import_dataset(
    session: Session,
    job: Job,
    schema: LabelSchema,
    binary: IO[bytes],
    fmt: ImportFormat,
    mode: ImportMode = ImportMode.all_or_nothing,
    *,
    annotations: AnnotationUse = AnnotationUse.report,
    progress: ProgressCallback | None = None,
    external_id_field: str | None = None,
    limits: ImportLimits | None = None,
) -> ImportResult:
    """Both phases in the caller's session and transaction, for callers that hold the job's row
    lock anyway (the demo, the CLI, tests): import a dataset into `job` and, if the job is
    active, split the new items into tasks. In all-or-nothing mode any bad row raises
    ValidationFailed listing every bad row; the caller then must not commit. `annotations`
    says what the annotations of Label Studio tasks become (counted, or gold answers)."""
    target = ImportTarget.of(session, job, schema, external_id_field)
    staged = check_dataset(
        target,
        binary,
        fmt,
        mode,
        limits=limits or ImportLimits.of(session_settings(session)),
        look_up=lambda ids: known_items(session, job.id, ids),
        annotations=annotations,
        progress=progress,
    )
    with staged:
        return write_staged(session, job, staged)
