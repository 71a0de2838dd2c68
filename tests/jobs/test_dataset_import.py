from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.db import Database
from app.core.errors import ValidationFailed
from app.jobs import importing
from app.jobs.errors import LabelSchemaChanged
from app.jobs.service import job_schema
from app.models import Item, Job
from tests.jobs.factories import BOXES, active_job, create_job, jsonl, reviews, upload
from tests.support import Account, assert_problem


def count_items(db: Database, job_id: int) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).where(Item.job_id == job_id)) or 0


def test_jsonl_import_reports_counts(
    client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client, client_account)
    response = upload(client, client_account, job_id, jsonl(reviews(10, gold_every=5)))
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["rows_read"], report["created"], report["gold"], report["rejected"]) == (
        10,
        10,
        2,
        0,
    )
    assert count_items(db, job_id) == 10


CSV_WITH_BAD_ROWS = (
    "external_id,text,gold_answer\n"
    "a,fine text,\n"
    "b,,\n"  # line 3: text missing
    'c,"multi\nline text",\n'  # lines 4-5: one record
    'd,gold row,"{""sentiment"": ""angry""}"\n'  # line 6: label not in the schema
    "e,too,many,cells\n"  # line 7
    "f,last good row,\n"
)


def test_csv_all_or_nothing_writes_nothing_and_reports_every_bad_line(
    client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client, client_account)
    body = assert_problem(
        upload(client, client_account, job_id, CSV_WITH_BAD_ROWS.encode(), content_type="text/csv"),
        422,
    )
    assert [e["line"] for e in body["errors"]] == [3, 6, 7]
    assert body["errors"][0]["pointer"] == "#/text"
    assert body["errors"][1]["pointer"].startswith("#/gold_answer/sentiment")
    assert (body["rows_read"], body["rejected"]) == (6, 3)
    assert count_items(db, job_id) == 0


def test_csv_skip_invalid_imports_the_good_rows(
    client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client, client_account)
    response = upload(
        client,
        client_account,
        job_id,
        CSV_WITH_BAD_ROWS.encode(),
        content_type="text/csv",
        mode="skip-invalid",
    )
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["created"], report["rejected"]) == (3, 3)
    assert [e["line"] for e in report["errors"]] == [3, 6, 7]
    with db.read_session() as session:
        texts = session.scalars(
            select(Item.payload).where(Item.job_id == job_id).order_by(Item.id)
        ).all()
    assert [t["text"] for t in texts] == ["fine text", "multi\nline text", "last good row"]


def test_jsonl_bad_rows_have_line_numbers_in_both_modes(
    client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client, client_account)
    body = b'{"text": "ok"}\n\n{"text": 5, "oops\n["not an object"]\n{"txt": "missing"}\n'
    failed = assert_problem(upload(client, client_account, job_id, body), 422)
    assert [e["line"] for e in failed["errors"]] == [3, 4, 5]
    assert count_items(db, job_id) == 0
    skipped = upload(client, client_account, job_id, body, mode="skip-invalid").json()
    assert (skipped["created"], skipped["rejected"]) == (1, 3)


def test_json_array_and_gzip_and_multipart(
    client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client, client_account)
    rows = [{"data": {"text": f"t{n}"}, "external_id": n} for n in range(3)]
    as_array = upload(
        client, client_account, job_id, json.dumps(rows).encode(), content_type="application/json"
    )
    assert as_array.json()["created"] == 3

    more = gzip.compress(jsonl(reviews(4)))
    multipart = client.post(
        f"/v1/jobs/{job_id}/items",
        headers=client_account.headers,
        files={"file": ("batch.jsonl.gz", more, "application/gzip")},
    )
    assert multipart.status_code == 201, multipart.text
    assert multipart.json()["created"] == 4
    assert count_items(db, job_id) == 7


def test_reupload_with_external_ids_is_idempotent(
    client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client, client_account)
    first = upload(client, client_account, job_id, jsonl(reviews(5))).json()
    again = upload(client, client_account, job_id, jsonl(reviews(8))).json()
    assert (first["created"], again["created"], again["unchanged"]) == (5, 3, 5)
    assert count_items(db, job_id) == 8

    changed = reviews(1)
    changed[0]["text"] = "edited"
    body = assert_problem(upload(client, client_account, job_id, jsonl(changed)), 422)
    assert body["errors"][0]["pointer"] == "#/external_id"
    assert count_items(db, job_id) == 8


def test_duplicate_external_id_within_one_file(client: TestClient, client_account: Account) -> None:
    job_id = create_job(client, client_account)
    rows = reviews(2) + reviews(1) + [{"external_id": "r0", "text": "other"}]
    body = assert_problem(upload(client, client_account, job_id, jsonl(rows)), 422)
    assert [e["line"] for e in body["errors"]] == [4]


def test_gold_answers_and_box_fields_are_checked(
    client: TestClient, client_account: Account
) -> None:
    job_id = create_job(client, client_account, BOXES)
    rows = [
        {"image": "a.jpg", "width": 100, "height": 50},
        {
            "image": "b.jpg",
            "width": 100,
            "height": 50,
            "gold_answer": {
                "objects": [{"x": 90, "y": 0, "width": 20, "height": 10, "label": "car"}]
            },
        },  # outside the image
        {"image": "c.jpg", "width": -1, "height": 50},
        {"image": "d.jpg", "width": 100, "height": 50, "prelabel_score": 2},
    ]
    body = assert_problem(upload(client, client_account, job_id, jsonl(rows)), 422)
    assert [(e["line"], e["pointer"].split("/")[1]) for e in body["errors"]] == [
        (2, "gold_answer"),
        (3, "width"),
        (4, "prelabel_score"),
    ]


def test_unreadable_files_and_unknown_formats(client: TestClient, client_account: Account) -> None:
    job_id = create_job(client, client_account)
    assert_problem(
        upload(
            client,
            client_account,
            job_id,
            b'[{"text": "a"}, {"text": ',
            content_type="application/json",
        ),
        422,
    )
    assert_problem(
        upload(client, client_account, job_id, b"\xff\xfe bad", content_type="text/csv"), 422
    )
    assert_problem(
        upload(client, client_account, job_id, b"text\nx\n", content_type="image/png"), 415
    )
    assert_problem(
        upload(client, client_account, job_id, b"x", content_type="application/json"), 422
    )


def test_oversize_upload_is_413(client: TestClient, client_account: Account, db: Database) -> None:
    from app.main import create_app

    small = db.settings.model_copy(update={"max_upload_bytes": 1024})
    job_id = create_job(client, client_account)
    with TestClient(create_app(small, db)) as limited:
        assert_problem(upload(limited, client_account, job_id, jsonl(reviews(100))), 413)
    assert count_items(db, job_id) == 0


def test_import_into_an_active_job_splits_new_items(
    client: TestClient, client_account: Account
) -> None:
    job_id = active_job(client, client_account, items=3)
    report = upload(client, client_account, job_id, jsonl(reviews(2, start=3))).json()
    assert report["tasks_created"] == 2
    progress = client.get(f"/v1/jobs/{job_id}/progress", headers=client_account.headers).json()
    assert progress["tasks"]["open"] == 5
    assert progress["items"] == {"total": 5, "regular": 5, "gold": 0}


def test_cannot_import_into_a_finished_job(client: TestClient, client_account: Account) -> None:
    job_id = create_job(client, client_account)
    client.post(f"/v1/jobs/{job_id}/cancel", headers=client_account.headers)
    assert_problem(upload(client, client_account, job_id, jsonl(reviews(1))), 409, "job-finished")


def test_repeated_external_id_in_a_later_batch_is_caught(
    client: TestClient, client_account: Account, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "BATCH_ROWS", 2)
    job_id = create_job(client, client_account)
    same = [*reviews(3), *reviews(1)]  # r0 again in the second batch, same content
    report = upload(client, client_account, job_id, jsonl(same)).json()
    assert (report["created"], report["unchanged"], report["rejected"]) == (3, 1, 0)

    other_job = create_job(client, client_account)
    clash = [*reviews(3), {"external_id": "r0", "text": "different"}]
    body = assert_problem(upload(client, client_account, other_job, jsonl(clash)), 422)
    assert [e["line"] for e in body["errors"]] == [4]
    assert count_items(db, other_job) == 0


@pytest.mark.parametrize("mode", list(importing.ImportMode))
def test_rows_imported_by_another_upload_while_a_file_is_checked_are_compared_not_doubled(
    mode: importing.ImportMode, client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client, client_account)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        target = importing.ImportTarget.of(session, job, job_schema(job))
        session.commit()
    rows = reviews(4)
    staged = importing.check_dataset(
        target,
        io.BytesIO(jsonl(rows)),
        importing.ImportFormat.jsonl,
        mode,
        limits=importing.ImportLimits.of(db.settings),
        look_up=importing.reading_look_up(db, job_id),
    )
    # Meanwhile another upload gives the job r0 as it is here and r1 with other content.
    meanwhile = upload(client, client_account, job_id, jsonl([rows[0], {**rows[1], "text": "x"}]))
    assert meanwhile.status_code == 201

    with staged, db.session() as session:
        job = session.get(Job, job_id, with_for_update=True)
        assert job is not None
        if mode is importing.ImportMode.all_or_nothing:
            with pytest.raises(ValidationFailed) as refused:
                importing.write_staged(session, job, staged)
            session.rollback()
            assert [(e["line"], e["pointer"]) for e in refused.value.errors] == [
                (2, "#/external_id")
            ]
            assert count_items(db, job_id) == 2
            return
        result = importing.write_staged(session, job, staged)
        session.commit()
    assert (result.created, result.unchanged, result.rejected) == (2, 1, 1)
    assert count_items(db, job_id) == 4


@pytest.mark.commits  # the CLI opens a database of its own
def test_the_cli_imports_in_two_phases_with_the_same_rules(
    client: TestClient,
    client_account: Account,
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    monkeypatch.setenv("TESSERA_DATABASE_URL", db.settings.database_url)
    monkeypatch.setenv("TESSERA_SECRET_KEY", db.settings.resolved_secret_key())
    job_id = create_job(client, client_account)
    products = tmp_path / "products.csv"
    products.write_bytes(b"sku,text\nA-1,red\nA-2,blue\n")
    args = ["import", str(job_id), str(products), "--external-id-field", "sku"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "2 created" in first.output
    again = CliRunner().invoke(cli, args)
    assert "0 created, 2 unchanged" in again.output
    nul = tmp_path / "nul.jsonl"
    nul.write_bytes(b'{"text": "a\\u0000"}\n')
    refused = CliRunner().invoke(cli, ["import", str(job_id), str(nul)])
    assert refused.exit_code == 1
    assert "line 1: #/text contains the NUL character" in refused.output
    assert count_items(db, job_id) == 2


def test_a_schema_changed_while_the_file_was_checked_refuses_the_import(
    client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client, client_account)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        target = importing.ImportTarget.of(session, job, job_schema(job))
        session.commit()
    staged = importing.check_dataset(
        target,
        io.BytesIO(jsonl(reviews(3))),
        importing.ImportFormat.jsonl,
        limits=importing.ImportLimits.of(db.settings),
        look_up=importing.reading_look_up(db, job_id),
    )
    other = {"controls": [{"name": "t", "type": "text", "field": "body"}]}
    patched = client.patch(
        f"/v1/jobs/{job_id}", json={"label_schema": other}, headers=client_account.headers
    )
    assert patched.status_code == 200, patched.text
    with staged, db.session() as session:
        job = session.get(Job, job_id, with_for_update=True)
        assert job is not None
        with pytest.raises(LabelSchemaChanged):
            importing.write_staged(session, job, staged)
    assert count_items(db, job_id) == 0
