"""Export of results, streamed with bounded memory.

One SQL query per database builds each item's JSON in the database (3–4× faster than in Python):
payload, external id, consensus, confidence, answer count and the raw answers with pseudonymous
annotator ids. On PostgreSQL it runs as `COPY (SELECT …) TO STDOUT` in CSV mode with \\x01 quote
and \\x02 delimiter characters, so the JSON passes through byte for byte. JSONL is that stream;
CSV, Label Studio JSON and COCO are built from it line by line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import text

from app.core.db import Database
from app.core.errors import ExportFormatUnavailable
from app.core.security import pseudonym_prefix
from app.label_schema import BoxesControl, ImageControl, LabelSchema
from app.label_schema.label_studio import label_studio_result
from app.models.jobs import AssignmentStatus

COUNTED = (AssignmentStatus.submitted.value, AssignmentStatus.approved.value)

# Answers are aggregated per item in one grouped pass over the job's answers and merged in by
# item id, instead of one correlated look-up per item.
_PG_QUERY = """
SELECT json_build_object(
  'item_id', i.id,
  'external_id', i.external_id,
  'data', i.payload,
  {gold}
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
  WHERE a.job_id = %(job_id)s AND s.status IN ('submitted', 'approved')
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
      WHERE a.item_id = i.id AND s.status IN ('submitted', 'approved')
      ORDER BY a.id
    )
  )
)
FROM items i LEFT JOIN item_results r ON r.item_id = i.id
WHERE i.job_id = :job_id {only_regular}
ORDER BY i.id
"""


def export_jsonl(
    db: Database, job_id: int, client_id: int, *, include_gold: bool = False
) -> Iterator[bytes]:
    """The job's items as JSON lines, streamed straight from the database."""
    prefix = pseudonym_prefix(db.settings.resolved_secret_key(), f"client:{client_id}")
    only_regular = "" if include_gold else "AND NOT i.is_gold"
    if db.dialect == "postgresql":
        gold = "'gold', i.is_gold, 'gold_answer', i.gold_answer," if include_gold else ""
        sql = _PG_QUERY.format(gold=gold, only_regular=only_regular)
        yield from _pg_copy_out(db, sql, {"prefix": prefix, "job_id": job_id})
    else:
        gold = (
            "'gold', json(CASE WHEN i.is_gold THEN 'true' ELSE 'false' END), "
            "'gold_answer', json(i.gold_answer),"
            if include_gold
            else ""
        )
        sql = _SQLITE_QUERY.format(gold=gold, only_regular=only_regular)
        yield from _sqlite_rows(db, sql, {"prefix": prefix, "job_id": job_id})


def _pg_copy_out(db: Database, sql: str, params: dict[str, Any]) -> Iterator[bytes]:
    with db.read_session() as session:
        raw: Any = session.connection().connection.driver_connection
        copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
        with raw.cursor() as cur, cur.copy(copy_sql, params) as copy:
            for block in copy:
                yield bytes(block)


def _sqlite_rows(db: Database, sql: str, params: dict[str, Any]) -> Iterator[bytes]:
    with db.read_session() as session:
        result = session.execute(text(sql), params).yield_per(2000)
        for rows in result.partitions():
            yield ("\n".join(row[0] for row in rows) + "\n").encode()


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


def export_csv(records: Iterable[dict[str, Any]], schema: LabelSchema) -> Iterator[bytes]:
    """Flattened CSV: one row per item; payload fields as `data.<key>`, consensus per control as
    `consensus.<control>` (JSON when not a plain value), raw answers as JSON."""
    records = iter(records)
    first = next(records, None)
    data_keys = sorted(first["data"]) if first else []
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
    writer.writerow(header)
    if first is None:
        yield buffer.getvalue().encode()
        return

    def cell(value: Any) -> Any:
        if value is None or isinstance(value, str | int | float):
            return value
        return json.dumps(value, ensure_ascii=False)

    for number, record in enumerate(_chain(first, records)):
        consensus = record.get("consensus") or {}
        writer.writerow(
            [
                record["item_id"],
                record["external_id"],
                *(cell(record["data"].get(k)) for k in data_keys),
                *(cell(consensus.get(c)) for c in controls),
                record["confidence"],
                record["answer_count"],
                json.dumps(record["answers"], ensure_ascii=False),
            ]
        )
        if number % 1000 == 999:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def export_label_studio(records: Iterable[dict[str, Any]], schema: LabelSchema) -> Iterator[bytes]:
    """A Label Studio task list: each item with one annotation per raw answer (completed_by is
    the pseudonymous annotator) and the consensus as a prediction scored by its confidence."""
    yield b"["
    for number, record in enumerate(records):
        payload = record["data"]
        task: dict[str, Any] = {
            "id": record["item_id"],
            "data": payload,
            "meta": {"external_id": record["external_id"]},
            "annotations": [
                {
                    "result": label_studio_result(schema, answer["answer"], payload),
                    "completed_by": answer["annotator"],
                    "created_at": answer["submitted_at"],
                }
                for answer in record["answers"]
            ],
            "predictions": (
                [
                    {
                        "model_version": "tessera-consensus",
                        "score": record["confidence"],
                        "result": label_studio_result(schema, record["consensus"], payload),
                    }
                ]
                if record.get("consensus")
                else []
            ),
        }
        yield (b",\n" if number else b"\n") + json.dumps(task, ensure_ascii=False).encode()
    yield b"\n]\n"


def export_coco(
    records_twice: tuple[Iterable[dict[str, Any]], Iterable[dict[str, Any]]],
    control: BoxesControl,
) -> Iterator[bytes]:
    """COCO detection JSON from the consensus boxes of one boxes control: one image per item,
    categories from its labels. Two passes over the records keep memory bounded."""
    images, annotations = records_twice
    categories = [{"id": i + 1, "name": label} for i, label in enumerate(control.labels)]
    category_ids = {c["name"]: c["id"] for c in categories}
    yield b'{"info": {"description": "Tessera export"}, "categories": '
    yield json.dumps(categories).encode() + b', "images": ['
    for number, record in enumerate(images):
        data = record["data"]
        image = {
            "id": record["item_id"],
            "file_name": data.get(control.field),
            "width": data.get(control.width_field) if control.width_field else None,
            "height": data.get(control.height_field) if control.height_field else None,
        }
        yield (b"," if number else b"") + json.dumps(image, ensure_ascii=False).encode()
    yield b'], "annotations": ['
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
            yield (b"," if next_id > 1 else b"") + json.dumps(entry).encode()
            next_id += 1
    yield b"]}\n"


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def stream_export(
    db: Database, job_id: int, client_id: int, schema: LabelSchema, fmt: str, include_gold: bool
) -> Iterator[bytes]:
    """The export of job `job_id` in `fmt` (jsonl, csv, label-studio or coco), as the API and
    `tessera export` send it. 409 when the job's schema cannot be expressed in `fmt`: Label
    Studio without the image size of a shape control, COCO without a boxes control. Checked
    before the first byte is produced."""

    def lines() -> Iterator[bytes]:
        return export_jsonl(db, job_id, client_id, include_gold=include_gold)

    if fmt == "jsonl":
        return lines()
    if fmt == "csv":
        return export_csv(iter_records(lines()), schema)
    if fmt == "label-studio":
        unsized = [
            c.name
            for c in schema.controls
            if isinstance(c, ImageControl) and not (c.width_field and c.height_field)
        ]
        if unsized:
            raise ExportFormatUnavailable(
                "Label Studio stores shapes in percent of the image size, and the schema does not "
                f"say where the image size is for {', '.join(unsized)} (width_field and "
                "height_field); export as JSONL, CSV or COCO instead"
            )
        return export_label_studio(iter_records(lines()), schema)
    boxes = next((c for c in schema.controls if isinstance(c, BoxesControl)), None)
    if boxes is None:
        raise ExportFormatUnavailable("COCO export needs a job with a boxes control")
    return export_coco((iter_records(lines()), iter_records(lines())), boxes)
