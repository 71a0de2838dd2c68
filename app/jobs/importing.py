"""Dataset import: CSV, JSON array or JSONL (optionally gzip), streamed with bounded memory.

Rows are parsed one at a time, checked against the fields the label schema needs, and written in
batches (COPY on PostgreSQL, executemany on SQLite) inside the caller's transaction, so an
all-or-nothing import that finds a bad row is rolled back whole by the caller. Re-uploading a row
with an external id already imported with the same content is a no-op; with different content it
is a bad row. A row that is a Label Studio task (a JSON export of Label Studio, or of Tessera in
Label Studio format) is read by `label_studio.read_task`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.core.errors import JobFinished, ValidationFailed
from app.jobs import label_studio
from app.jobs.label_studio import AnnotationUse
from app.jobs.splitting import split_into_tasks
from app.label_schema import (
    ImageControl,
    LabelledControl,
    LabelSchema,
    RankingControl,
    SegmentsControl,
    SpansControl,
    candidate_ids,
    item_options,
    required_fields,
    validate_answer,
)
from app.models.jobs import Item, Job, JobStatus

BATCH_ROWS = 5000
MAX_REPORTED_ERRORS = 1000
MAX_ROW_BYTES = 1_000_000
READ_CHUNK = 1 << 20
RESERVED = ("external_id", "gold_answer", "prelabel", "prelabel_score")
DATA_FORM_KEYS = frozenset({"data", *RESERVED})


class ImportFormat(StrEnum):
    csv = "csv"
    json = "json"
    jsonl = "jsonl"


class ImportMode(StrEnum):
    all_or_nothing = "all-or-nothing"
    skip_invalid = "skip-invalid"


class UnreadableFile(ValidationFailed):
    """The file itself cannot be parsed past some point (not just one bad row)."""

    slug, title = "unreadable-dataset", "The dataset file cannot be read"


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


class RowError(Exception):
    def __init__(self, detail: str, pointer: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.pointer = detail, pointer


@dataclass(frozen=True, slots=True)
class ItemRow:
    line: int
    external_id: str | None
    payload: dict[str, Any]
    gold_answer: dict[str, Any] | None
    prelabel: dict[str, Any] | None
    prelabel_score: float | None
    annotations: int = 0  # of a Label Studio task
    gold_from_annotations: bool = False

    def same_content(self, item: Any) -> bool:
        return bool(
            item.payload == self.payload
            and item.gold_answer == self.gold_answer
            and item.prelabel == self.prelabel
            and item.prelabel_score == self.prelabel_score
        )


# --- reading ------------------------------------------------------------------------------------


def detect_format(filename: str | None, content_type: str | None) -> ImportFormat | None:
    name = (filename or "").lower().removesuffix(".gz")
    for suffix, fmt in (
        (".csv", ImportFormat.csv),
        (".jsonl", ImportFormat.jsonl),
        (".ndjson", ImportFormat.jsonl),
        (".json", ImportFormat.json),
    ):
        if name.endswith(suffix):
            return fmt
    ctype = (content_type or "").split(";")[0].strip().lower()
    return {
        "text/csv": ImportFormat.csv,
        "application/json": ImportFormat.json,
        "application/x-ndjson": ImportFormat.jsonl,
        "application/jsonl": ImportFormat.jsonl,
        "application/x-jsonlines": ImportFormat.jsonl,
    }.get(ctype)


def open_upload(binary: IO[bytes]) -> IO[bytes]:
    """A buffered view of an upload, gunzipped when it starts with the gzip magic bytes."""
    buffered: Any = binary if isinstance(binary, io.BufferedReader) else io.BufferedReader(binary)
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        buffered = io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"))
    return buffered  # type: ignore[no-any-return]


def read_rows(binary: IO[bytes], fmt: ImportFormat) -> Iterator[tuple[int, Any]]:
    """(line or element number, parsed row or RowError) for each row of the (decompressed)
    file. Raises UnreadableFile when the file cannot be parsed any further."""
    try:
        if fmt is ImportFormat.jsonl:
            yield from _jsonl_rows(binary)
            return
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        if fmt is ImportFormat.csv:
            yield from _csv_rows(text)
        else:
            yield from _json_array_rows(text)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"The file is not valid UTF-8 ({exc.reason})") from None
    except (EOFError, OSError, gzip.BadGzipFile) as exc:
        raise UnreadableFile(f"The file is truncated or not valid gzip: {exc}") from None


def _csv_rows(text: IO[str]) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise UnreadableFile(f"line 1: {exc}") from None
    names = [h.strip() for h in header]
    if len(set(names)) != len(names) or "" in names:
        raise UnreadableFile("line 1: the CSV header needs unique, non-empty column names")
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UnreadableFile(f"line {start}: {exc}") from None
        line, start = start, reader.line_num + 1
        if not cells:
            continue
        if len(cells) != len(names):
            yield line, RowError(f"expected {len(names)} columns, found {len(cells)}")
            continue
        yield line, {name: value for name, value in zip(names, cells, strict=True) if value != ""}


def _jsonl_rows(binary: IO[bytes]) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(binary, start=1):
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if not line.strip():
            continue
        if len(line) > MAX_ROW_BYTES:
            yield number, RowError(f"row larger than {MAX_ROW_BYTES} bytes")
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, RowError(f"invalid JSON: {exc.msg} at column {exc.colno}")


def _json_array_rows(text: IO[str]) -> Iterator[tuple[int, Any]]:
    """Stream the elements of a top-level JSON array without loading the whole file."""
    decoder = json.JSONDecoder()
    buf, pos, eof, number = "", 0, False, 0

    def fill() -> bool:
        nonlocal buf, pos, eof
        chunk = text.read(READ_CHUNK)
        if not chunk:
            eof = True
            return False
        buf, pos = buf[pos:] + chunk, 0
        return True

    def skip_ws() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not fill():
                return ""

    if skip_ws() != "[":
        raise UnreadableFile("A JSON dataset must be an array of objects (or use JSONL)")
    pos += 1
    if skip_ws() == "]":
        return
    while True:
        number += 1
        skip_ws()
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if not eof and len(buf) - pos < MAX_ROW_BYTES * 4 and fill():
                    continue
                raise UnreadableFile(f"element {number}: invalid JSON ({exc.msg})") from None
            if end == len(buf) and not eof and fill():
                continue  # a number or literal may go on in the next chunk
            break
        pos = end
        yield number, value
        sep = skip_ws()
        if sep == ",":
            pos += 1
        elif sep == "]":
            return
        else:
            raise UnreadableFile(f"after element {number}: expected ',' or ']'")


# --- checking -----------------------------------------------------------------------------------


class RowChecker:
    """Turns a parsed row into an ItemRow, or raises RowError saying what is wrong."""

    def __init__(
        self,
        schema: LabelSchema,
        fmt: ImportFormat,
        annotations: AnnotationUse = AnnotationUse.report,
    ) -> None:
        self.schema = schema
        self.fmt = fmt
        self.annotations = annotations
        self.fields = required_fields(schema)
        self.text_fields = {c.field for c in schema.controls if isinstance(c, SpansControl)}
        size_fields: set[str] = set()
        for control in schema.controls:
            if isinstance(control, ImageControl):
                # Declared size fields are required; Label Studio's own names, used when none
                # are declared, are checked where an item gives them.
                size_fields.update(control.size_keys)
            if isinstance(control, SegmentsControl) and control.duration_field:
                size_fields.add(control.duration_field)
        self.size_fields = size_fields
        self.option_fields = {
            c.labels_field
            for c in schema.controls
            if isinstance(c, LabelledControl) and c.labels_field is not None
        }
        self.candidate_fields = {c.field for c in schema.controls if isinstance(c, RankingControl)}

    def check(self, line: int, row: Any) -> ItemRow:
        if type(row) is not dict:
            raise row if isinstance(row, RowError) else RowError("a row must be a JSON object")
        data = row.get("data")
        if type(data) is dict and label_studio.is_task(row):
            return self._label_studio_task(line, row)
        if type(data) is dict:
            unknown = sorted(set(row) - DATA_FORM_KEYS)
            if unknown:
                raise RowError(
                    f"unknown top-level keys beside 'data': {', '.join(unknown)} (a Label Studio "
                    "task has an id, annotations or predictions)"
                )
            payload = dict(data)
            external, gold, prelabel, score = (row.get(k) for k in RESERVED)
        else:
            payload = row.copy()
            pop = payload.pop
            external = pop("external_id", None)
            gold = pop("gold_answer", None)
            prelabel = pop("prelabel", None)
            score = pop("prelabel_score", None)
        if self.fmt is ImportFormat.csv:
            self._numbers_from_csv(payload)
        self._check_payload(payload)
        if type(external) is not str or not 0 < len(external) <= 255:
            external = self._external_id(external)
        return ItemRow(
            line,
            external,
            payload,
            None if gold is None else self._answer(gold, payload, "gold_answer"),
            None if prelabel is None else self._answer(prelabel, payload, "prelabel"),
            None if score is None else self._score(score),
        )

    def _label_studio_task(self, line: int, row: dict[str, Any]) -> ItemRow:
        """A Label Studio task; Tessera's own keys (`external_id`, `gold_answer`, `prelabel`,
        `prelabel_score`) still apply and win over what the task's annotations and predictions
        give."""
        try:
            task = label_studio.read_task(self.schema, row, self.annotations)
        except label_studio.TaskError as exc:
            raise RowError(exc.detail, exc.pointer) from None
        payload = task.payload
        self._check_payload(payload)
        external = row.get("external_id", task.external_id)
        if type(external) is not str or not 0 < len(external) <= 255:
            external = self._external_id(external)
        gold = row.get("gold_answer")
        prelabel = row.get("prelabel")
        score = row.get("prelabel_score") if prelabel is not None else task.prelabel_score
        return ItemRow(
            line,
            external,
            payload,
            task.gold_answer if gold is None else self._answer(gold, payload, "gold_answer"),
            task.prelabel if prelabel is None else self._answer(prelabel, payload, "prelabel"),
            self._score(score),
            task.annotations,
            task.gold_from_annotations and gold is None,
        )

    def _numbers_from_csv(self, payload: dict[str, Any]) -> None:
        for name in self.size_fields:
            value = payload.get(name)
            if isinstance(value, str):
                try:
                    payload[name] = int(value) if value.strip().isdigit() else float(value)
                except ValueError:
                    raise RowError(f"{name} must be a number", f"#/{name}") from None

    def _check_payload(self, payload: dict[str, Any]) -> None:
        missing = [name for name in self.fields if payload.get(name) in (None, "")]
        if missing:
            raise RowError(
                f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                "required by the label schema",
                f"#/{missing[0]}",
            )
        for name in self.text_fields:
            if not isinstance(payload[name], str):
                raise RowError(f"{name} must be a string (spans are offsets into it)", f"#/{name}")
        for name in self.size_fields:
            value = payload.get(name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise RowError(
                    f"{name} must be a positive number (image size or media duration)", f"#/{name}"
                )
        for name in self.option_fields:
            if item_options(payload[name]) is None:
                raise RowError(
                    f"{name} must list the item's labels: strings or objects with a string "
                    '"value" (1 to 1000 of them)',
                    f"#/{name}",
                )
        for name in self.candidate_fields:
            if candidate_ids(payload[name]) is None:
                raise RowError(
                    f"{name} must list the candidates to rank: objects with unique string ids "
                    "(1 to 1000 of them)",
                    f"#/{name}",
                )

    @staticmethod
    def _external_id(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RowError("external_id must be a string or an integer", "#/external_id")
        text = str(value)
        if not 1 <= len(text) <= 255:
            raise RowError("external_id must be 1 to 255 characters", "#/external_id")
        return text

    def _answer(self, value: Any, payload: dict[str, Any], name: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if isinstance(value, str) and self.fmt is ImportFormat.csv:
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise RowError(f"{name} must be a JSON object", f"#/{name}") from None
        if not isinstance(value, dict):
            raise RowError(f"{name} must be a JSON object keyed by control name", f"#/{name}")
        problems = validate_answer(self.schema, value, payload)
        if problems:
            first = problems[0]
            detail = "; ".join(p["detail"] for p in problems[:5])
            raise RowError(
                f"{name} does not fit the label schema: {detail}",
                f"#/{name}" + first["pointer"].removeprefix("#"),
            )
        return value

    @staticmethod
    def _score(value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise RowError("prelabel_score must be a number", "#/prelabel_score") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise RowError("prelabel_score must be a number from 0 to 1", "#/prelabel_score")
        return float(value)


# --- writing ------------------------------------------------------------------------------------

COLUMNS = (
    "job_id",
    "external_id",
    "payload",
    "is_gold",
    "gold_answer",
    "prelabel",
    "prelabel_score",
)


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class ItemWriter:
    """Bulk-inserts rows through the session's own connection (and so its transaction)."""

    def __init__(self, session: Session, job_id: int) -> None:
        self.session = session
        self.job_id = job_id
        self.raw: Any = session.connection().connection.driver_connection
        self.dialect = session.get_bind().dialect.name

    def write(self, rows: list[ItemRow]) -> None:
        if not rows:
            return
        values = (
            (
                self.job_id,
                r.external_id,
                _dumps(r.payload),
                r.gold_answer is not None,
                _dumps(r.gold_answer),
                _dumps(r.prelabel),
                r.prelabel_score,
            )
            for r in rows
        )
        if self.dialect == "postgresql":
            with (
                self.raw.cursor() as cur,
                cur.copy(f"COPY items ({', '.join(COLUMNS)}) FROM STDIN") as copy,
            ):
                for value in values:
                    copy.write_row(value)
        else:
            marks = ", ".join("?" for _ in COLUMNS)
            self.raw.executemany(
                f"INSERT INTO items ({', '.join(COLUMNS)}) VALUES ({marks})",  # noqa: S608
                values,
            )


ProgressCallback = Callable[[ImportResult], None]


def import_items(
    session: Session,
    job: Job,
    schema: LabelSchema,
    binary: IO[bytes],
    fmt: ImportFormat,
    mode: ImportMode = ImportMode.all_or_nothing,
    *,
    annotations: AnnotationUse = AnnotationUse.report,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Read `binary` and insert its rows as items of `job` in the session's transaction.

    Every bad row is counted and (the first MAX_REPORTED_ERRORS) reported with its line. In
    all-or-nothing mode the caller must roll back when `result.rejected` is not zero; this
    function stops writing at the first bad row but reads on to report every problem.
    Raises UnreadableFile when the file cannot be parsed past some point."""
    result = ImportResult(format=fmt, mode=mode)
    checker = RowChecker(schema, fmt, annotations)
    writer = ItemWriter(session, job.id)
    batch: list[ItemRow] = []
    # A job without items needs no look-ups: the unique (job, external id) index catches a
    # repeated id inside the file, and that batch is then redone with look-ups.
    had_items = session.scalar(select(Item.id).where(Item.job_id == job.id).limit(1)) is not None

    def flush() -> None:
        fresh = _drop_known(session, job.id, batch, result, look_up=had_items)
        if not (mode is ImportMode.all_or_nothing and result.rejected):
            try:
                with session.begin_nested():
                    session.connection()  # emits the SAVEPOINT now; the session is lazy
                    writer.write(fresh)
            except Exception as exc:
                if not _is_unique_violation(exc):
                    raise
                fresh = _drop_known(session, job.id, fresh, result, look_up=True)
                writer.write(fresh)
            result.created += len(fresh)
            result.gold += sum(1 for r in fresh if r.gold_answer is not None)
            result.annotations += sum(r.annotations for r in fresh)
            result.gold_from_annotations += sum(1 for r in fresh if r.gold_from_annotations)
        batch.clear()
        if progress is not None:
            progress(result)

    for line, row in read_rows(open_upload(binary), fmt):
        result.rows_read += 1
        try:
            batch.append(checker.check(line, row))
        except RowError as exc:
            result.reject(line, exc.detail, exc.pointer)
        if len(batch) >= BATCH_ROWS:
            flush()
    flush()
    return result


def _is_unique_violation(exc: BaseException) -> bool:
    import sqlite3

    import psycopg

    return isinstance(exc, psycopg.errors.UniqueViolation | sqlite3.IntegrityError)


def _drop_known(
    session: Session, job_id: int, batch: list[ItemRow], result: ImportResult, *, look_up: bool
) -> list[ItemRow]:
    """Rows of the batch to insert: those with an external id seen before (earlier in this
    batch, or in the database when `look_up`) are unchanged when identical, rejected when
    different."""
    ids = [r.external_id for r in batch if r.external_id is not None]
    existing: dict[str, Any] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    if ids and look_up and postgres:
        # Statistics lag far behind a table filling up inside this transaction; without this
        # the planner may scan every item of the job for each look-up.
        session.execute(text("SET LOCAL enable_seqscan = off"))
    if ids and look_up:
        for chunk_start in range(0, len(ids), 1000):
            chunk = ids[chunk_start : chunk_start + 1000]
            for item in session.execute(
                select(
                    Item.external_id,
                    Item.payload,
                    Item.gold_answer,
                    Item.prelabel,
                    Item.prelabel_score,
                ).where(Item.job_id == job_id, Item.external_id.in_(chunk))
            ):
                existing[item.external_id] = item
    fresh: list[ItemRow] = []
    for row in batch:
        if row.external_id is not None:
            known = existing.get(row.external_id)
            if known is not None:
                if row.same_content(known):
                    result.unchanged += 1
                else:
                    result.reject(
                        row.line,
                        f"external_id {row.external_id!r} was already imported with different "
                        "content",
                        "#/external_id",
                    )
                continue
            existing[row.external_id] = row
        fresh.append(row)
    if ids and look_up and postgres:
        session.execute(text("SET LOCAL enable_seqscan = on"))
    return fresh


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
) -> ImportResult:
    """Import a dataset into `job` (whose row the caller has locked) and, if the job is active,
    split the new items into tasks. In all-or-nothing mode any bad row raises ValidationFailed
    listing every bad row; the caller then must not commit (nothing is kept). `annotations`
    says what the annotations of Label Studio tasks become (counted, or gold answers)."""
    if job.status in (JobStatus.completed, JobStatus.cancelled):
        raise JobFinished(f"Cannot import into a {job.status.value} job")
    result = import_items(
        session, job, schema, binary, fmt, mode, annotations=annotations, progress=progress
    )
    if mode is ImportMode.all_or_nothing and result.rejected:
        raise ValidationFailed(
            f"{result.rejected} of {result.rows_read} rows are invalid; nothing was imported "
            "(use mode=skip-invalid to import the valid rows)",
            errors=result.errors,
            rows_read=result.rows_read,
            rejected=result.rejected,
            errors_truncated=result.errors_truncated,
        )
    if job.status is JobStatus.active:
        result.tasks_created = split_into_tasks(session, job)
    return result
