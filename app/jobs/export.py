"""Export of results, streamed with bounded memory.

One SQL query per database builds each item's JSON in the database (3–4× faster than in Python):
payload, external id, consensus, confidence, answer count and the raw answers with pseudonymous
annotator ids. On PostgreSQL it runs as `COPY (SELECT …) TO STDOUT` in CSV mode with \\x01 quote
and \\x02 delimiter characters, so the JSON passes through byte for byte. JSONL is that stream;
CSV, Label Studio JSON (`label_studio.export_tasks`) and COCO are built from it line by line.

CSV has one column per payload key, and items need not share their keys: the columns are the
union of every exported item's keys, in order of first appearance (by item id; each item's new
keys sorted). A CSV header precedes the rows, so the keys are read first, by a query of their
own that the database aggregates (memory holds the distinct keys, not the items), in the same
snapshot as the rows (REPEATABLE READ on PostgreSQL, one read transaction on SQLite), so an item
imported meanwhile cannot bring a key the header lacks. Measured on 200,000 items: the key
query took 0.24 s (SQLite) and 0.27 s (PostgreSQL) of a 3.6 s CSV export. Text cells a
spreadsheet would run as a formula are neutralised (`app.core.csv_cells`); JSONL, Label Studio
and COCO stay exact.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.core.csv_cells import spreadsheet_safe
from app.core.db import Database
from app.core.security import client_pseudonym_prefix
from app.jobs import label_studio
from app.jobs.errors import ExportFormatUnavailable
from app.label_schema import BoxesControl, LabelSchema
from app.label_schema.label_studio import Targets, generated_targets
from app.label_schema.region_controls import DEFAULT_HEIGHT_KEY, DEFAULT_WIDTH_KEY
from app.models.jobs import COUNTED_WORK

# Only the answers that count are exported (the statuses are constants, written into the SQL).
_COUNTED = ", ".join(f"'{status.value}'" for status in COUNTED_WORK)

# Answers are aggregated per item in one grouped pass over the job's answers and merged in by
# item id, instead of one correlated look-up per item.
_PG_QUERY = """
SELECT json_build_object(
  'item_id', i.id,
  'external_id', i.external_id,
  'data', i.payload,
  {gold}
  {prelabel}
  'consensus', r.answer,
  'confidence', r.confidence,
  'answer_count', coalesce(r.answer_count, 0),
  'answers', coalesce(g.answers, '[]'::json)
)
FROM items i
LEFT JOIN item_results r ON r.item_id = i.id
LEFT JOIN (
  SELECT a.item_id, json_agg(json_build_object(
      'annotator', substr(encode(sha256(convert_to(%(prefix)s || a.annotator_id::text, 'UTF8')),
                                 'hex'), 1, 16),
      'answer', a.value,
      'submitted_at', to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    ) ORDER BY a.id) AS answers
  FROM answers a JOIN assignments s ON s.id = a.assignment_id
  WHERE a.job_id = %(job_id)s AND s.status IN ({counted})
  GROUP BY a.item_id
) g ON g.item_id = i.id
WHERE i.job_id = %(job_id)s {only_regular}
ORDER BY i.id
"""

_SQLITE_QUERY = """
SELECT json_object(
  'item_id', i.id,
  'external_id', i.external_id,
  'data', json(i.payload),
  {gold}
  {prelabel}
  'consensus', json(r.answer),
  'confidence', r.confidence,
  'answer_count', coalesce(r.answer_count, 0),
  'answers', (
    SELECT json_group_array(json(x)) FROM (
      SELECT json_object(
        'annotator', substr(sha256_hex(:prefix || a.annotator_id), 1, 16),
        'answer', json(a.value),
        'submitted_at', strftime('%Y-%m-%dT%H:%M:%fZ', a.created_at)
      ) AS x
      FROM answers a JOIN assignments s ON s.id = a.assignment_id
      WHERE a.item_id = i.id AND s.status IN ({counted})
      ORDER BY a.id
    )
  )
)
FROM items i LEFT JOIN item_results r ON r.item_id = i.id
WHERE i.job_id = :job_id {only_regular}
ORDER BY i.id
"""


def export_jsonl(
    db: Database,
    job_id: int,
    client_id: int,
    *,
    include_gold: bool = False,
    include_prelabel: bool = False,
) -> Iterator[bytes]:
    """The job's items as JSON lines, streamed straight from the database (with `gold` and
    `gold_answer`, `prelabel` and `prelabel_score` when asked)."""
    with db.read_session() as session:
        yield from _jsonl(session, db, job_id, client_id, include_gold, include_prelabel)


def _jsonl(
    session: Session,
    db: Database,
    job_id: int,
    client_id: int,
    include_gold: bool,
    include_prelabel: bool,
) -> Iterator[bytes]:
    prefix = client_pseudonym_prefix(db.settings.resolved_secret_key(), client_id)
    only_regular = "" if include_gold else "AND NOT i.is_gold"
    if db.dialect == "postgresql":
        gold = "'gold', i.is_gold, 'gold_answer', i.gold_answer," if include_gold else ""
        prelabel = (
            "'prelabel', i.prelabel, 'prelabel_score', i.prelabel_score,"
            if include_prelabel
            else ""
        )
        sql = _PG_QUERY.format(
            gold=gold, prelabel=prelabel, only_regular=only_regular, counted=_COUNTED
        )
        yield from _pg_copy_out(session, sql, {"prefix": prefix, "job_id": job_id})
    else:
        gold = (
            "'gold', json(CASE WHEN i.is_gold THEN 'true' ELSE 'false' END), "
            "'gold_answer', json(i.gold_answer),"
            if include_gold
            else ""
        )
        prelabel = (
            "'prelabel', json(i.prelabel), 'prelabel_score', i.prelabel_score,"
            if include_prelabel
            else ""
        )
        sql = _SQLITE_QUERY.format(
            gold=gold, prelabel=prelabel, only_regular=only_regular, counted=_COUNTED
        )
        yield from _sqlite_rows(session, sql, {"prefix": prefix, "job_id": job_id})


def _pg_copy_out(session: Session, sql: str, params: dict[str, Any]) -> Iterator[bytes]:
    raw: Any = session.connection().connection.driver_connection
    copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
    with raw.cursor() as cur, cur.copy(copy_sql, params) as copy:
        for block in copy:
            yield bytes(block)


def _sqlite_rows(session: Session, sql: str, params: dict[str, Any]) -> Iterator[bytes]:
    result = session.execute(text(sql), params).yield_per(2000)
    for rows in result.partitions():
        yield ("\n".join(row[0] for row in rows) + "\n").encode()


# Each payload key with the first item that has it: the database groups, Python orders.
_PG_KEYS = """
SELECT k.key, min(i.id) FROM items i CROSS JOIN LATERAL jsonb_object_keys(i.payload) AS k(key)
WHERE i.job_id = :job_id {only_regular} GROUP BY k.key
"""
_SQLITE_KEYS = """
SELECT k.key, min(i.id) FROM items i, json_each(i.payload) AS k
WHERE i.job_id = :job_id {only_regular} GROUP BY k.key
"""


def payload_keys(session: Session, db: Database, job_id: int, include_gold: bool) -> list[str]:
    """The union of the exported items' payload keys, by first appearance (ties sorted)."""
    only_regular = "" if include_gold else "AND NOT i.is_gold"
    query = _PG_KEYS if db.dialect == "postgresql" else _SQLITE_KEYS
    rows = session.execute(text(query.format(only_regular=only_regular)), {"job_id": job_id})
    return [key for key, _ in sorted(rows, key=lambda row: (row[1], row[0]))]


def _csv_lines(
    db: Database, job_id: int, client_id: int, schema: LabelSchema, include_gold: bool
) -> Iterator[bytes]:
    """The CSV export: the payload keys, then the rows, read in one snapshot."""
    with db.snapshot_session() as session:
        keys = payload_keys(session, db, job_id, include_gold)
        records = iter_records(_jsonl(session, db, job_id, client_id, include_gold, False))
        yield from export_csv(records, schema, keys)


def iter_records(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Parse the JSONL stream back into records, whatever the chunk boundaries."""
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line:
                yield json.loads(line)
    if rest.strip():
        yield json.loads(rest)


def export_csv(
    records: Iterable[dict[str, Any]], schema: LabelSchema, data_keys: Sequence[str]
) -> Iterator[bytes]:
    """Flattened CSV: one row per item; payload fields as `data.<key>` for each of `data_keys`
    (empty where an item lacks one), consensus per control as `consensus.<control>` (JSON when
    not a plain value), raw answers as JSON. Text a spreadsheet would run is neutralised."""
    controls = [c.name for c in schema.controls]
    header = [
        "item_id",
        "external_id",
        *(f"data.{k}" for k in data_keys),
        *(f"consensus.{c}" for c in controls),
        "confidence",
        "answer_count",
        "answers",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([spreadsheet_safe(name) for name in header])

    def cell(value: Any) -> Any:
        if value is None or isinstance(value, int | float):
            return value
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False)
        return spreadsheet_safe(value)

    for number, record in enumerate(records):
        consensus = record.get("consensus") or {}
        writer.writerow(
            [
                record["item_id"],
                cell(record["external_id"]),
                *(cell(record["data"].get(k)) for k in data_keys),
                *(cell(consensus.get(c)) for c in controls),
                record["confidence"],
                record["answer_count"],
                cell(record["answers"]),
            ]
        )
        if number % 1000 == 999:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def export_coco(
    records_twice: tuple[Iterable[dict[str, Any]], Iterable[dict[str, Any]]],
    control: BoxesControl,
) -> Iterator[bytes]:
    """COCO detection JSON from the consensus boxes of one boxes control: one image per item,
    categories from its labels (and, for labels taken from the items, the labels the consensus
    uses, in order of first use), each box's per-region attributes as its `attributes`. Two
    passes over the records keep memory bounded."""
    images, annotations = records_twice
    category_ids = {label: i + 1 for i, label in enumerate(control.labels)}
    width_key, height_key = control.size_keys
    yield b'{"info": {"description": "Tessera export"}, "images": ['
    for number, record in enumerate(images):
        data = record["data"]
        image = {
            "id": record["item_id"],
            "file_name": data.get(control.field),
            "width": data.get(width_key),
            "height": data.get(height_key),
        }
        yield (b"," if number else b"") + json.dumps(image, ensure_ascii=False).encode()
        for box in (record.get("consensus") or {}).get(control.name) or []:
            category_ids.setdefault(box["label"], len(category_ids) + 1)
    categories = [{"id": i, "name": label} for label, i in category_ids.items()]
    yield b'], "categories": ' + json.dumps(categories, ensure_ascii=False).encode()
    yield b', "annotations": ['
    next_id = 1
    for record in annotations:
        boxes = (record.get("consensus") or {}).get(control.name) or []
        for box in boxes:
            entry = {
                "id": next_id,
                "image_id": record["item_id"],
                "category_id": category_ids[box["label"]],
                "bbox": [box["x"], box["y"], box["width"], box["height"]],
                "area": box["width"] * box["height"],
                "iscrowd": 0,
                "score": record["confidence"],
            }
            if box.get("attributes"):
                entry["attributes"] = box["attributes"]
            yield (b"," if next_id > 1 else b"") + json.dumps(entry, ensure_ascii=False).encode()
            next_id += 1
    yield b"]}\n"


def stream_export(
    db: Database,
    job_id: int,
    client_id: int,
    schema: LabelSchema,
    fmt: str,
    include_gold: bool,
    *,
    targets: Mapping[str, Targets] | None = None,
) -> Iterator[bytes]:
    """The export of job `job_id` in `fmt` (jsonl, csv, label-studio or coco), as the API and
    `tessera export` send it. For Label Studio, `targets` are the objects each control labels in
    the job's config (`label_studio.job_view`; by default the generated config's). 409 when the
    job cannot be expressed in `fmt`: Label Studio with items whose image size is unknown, COCO
    without a boxes control. Checked before the first byte is produced."""

    def lines(*, prelabel: bool = False) -> Iterator[bytes]:
        return export_jsonl(
            db, job_id, client_id, include_gold=include_gold, include_prelabel=prelabel
        )

    if fmt == "jsonl":
        return lines()
    if fmt == "csv":
        return _csv_lines(db, job_id, client_id, schema, include_gold)
    if fmt == "label-studio":
        _check_image_sizes(db, job_id, schema, include_gold)
        return label_studio.export_tasks(
            iter_records(lines(prelabel=True)), schema, targets or generated_targets(schema)
        )
    boxes = next((c for c in schema.controls if isinstance(c, BoxesControl)), None)
    if boxes is None:
        raise ExportFormatUnavailable("COCO export needs a job with a boxes control")
    return export_coco((iter_records(lines()), iter_records(lines())), boxes)


def _check_image_sizes(db: Database, job_id: int, schema: LabelSchema, include_gold: bool) -> None:
    """Label Studio places shapes in percent of the image size: every exported item of a job
    whose schema names no size fields must carry `original_width` and `original_height`."""
    unsized = label_studio.unsized_image_controls(schema)
    if not unsized:
        return
    only_regular = "" if include_gold else "AND NOT is_gold"
    if db.dialect == "postgresql":
        has_size = (
            "coalesce(jsonb_typeof(payload -> :width), '') = 'number' AND "
            "coalesce(jsonb_typeof(payload -> :height), '') = 'number'"
        )
    else:
        has_size = (
            "coalesce(json_type(payload, '$.' || :width), '') IN ('integer', 'real') AND "
            "coalesce(json_type(payload, '$.' || :height), '') IN ('integer', 'real')"
        )
    sql = f"SELECT count(*) FROM items WHERE job_id = :job_id {only_regular} AND NOT ({has_size})"  # noqa: S608
    params = {"job_id": job_id, "width": DEFAULT_WIDTH_KEY, "height": DEFAULT_HEIGHT_KEY}
    with db.read_session() as session:
        missing = session.scalar(text(sql), params) or 0
    if missing:
        names = ", ".join(c.name for c in unsized)
        raise ExportFormatUnavailable(
            f"Label Studio stores shapes in percent of the image size, and {missing} item(s) do "
            f"not say their image size for {names}: give original_width and original_height in "
            "their payload (importing Label Studio tasks with results fills them in), or set "
            "width_field and height_field when creating the job (image_size); export as JSONL, "
            "CSV or COCO instead"
        )
