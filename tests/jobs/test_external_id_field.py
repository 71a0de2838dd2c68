"""Declaring the external id: a job (or one upload) names the column or key whose value is each
row's external id, so re-uploading a file that carries its own ids is idempotent without renaming
that column to `external_id`. Checked in both import modes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import Database
from app.models import Item
from tests.jobs.factories import active_job, create_job, job_body
from tests.jobs.test_dataset_import import count_items
from tests.jobs.uploads import HOWS, How, import_client, import_file
from tests.support import Account, assert_problem

CSV = "text/csv"
PRODUCTS = b"sku,text\nA-1,red shoe\nA-2,blue shoe\n"


@pytest.fixture
def client_both(db: Database, tmp_path: Path) -> Iterator[TestClient]:
    with import_client(db, tmp_path) as client:
        yield client


def stored(db: Database, job_id: int) -> list[tuple[str | None, dict[str, object]]]:
    with db.read_session() as session:
        rows = session.execute(
            select(Item.external_id, Item.payload).where(Item.job_id == job_id).order_by(Item.id)
        )
        return [(external_id, payload) for external_id, payload in rows]


@pytest.mark.parametrize("how", HOWS)
def test_a_declared_column_is_the_external_id_and_reuploads_are_idempotent(
    how: How, client_both: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client_both, client_account, external_id_field="sku")
    job = client_both.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert job["external_id_field"] == "sku"

    first = import_file(client_both, client_account, job_id, PRODUCTS, how=how, content_type=CSV)
    assert first.report["created"] == 2
    assert stored(db, job_id) == [
        ("A-1", {"sku": "A-1", "text": "red shoe"}),
        ("A-2", {"sku": "A-2", "text": "blue shoe"}),
    ]
    again = import_file(
        client_both,
        client_account,
        job_id,
        PRODUCTS + b"A-3,green shoe\n",
        how=how,
        content_type=CSV,
    )
    assert (again.report["created"], again.report["unchanged"]) == (1, 2)

    changed = import_file(
        client_both, client_account, job_id, b"sku,text\nA-1,RED SHOE\n", how=how, content_type=CSV
    )
    assert (changed.status, changed.slug) == (422, "validation-failed")
    assert changed.body["errors"][0]["pointer"] == "#/sku"
    assert count_items(db, job_id) == 3


@pytest.mark.parametrize("how", HOWS)
def test_a_csv_without_the_declared_column_is_refused(
    how: How, client_both: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client_both, client_account, external_id_field="sku")
    outcome = import_file(
        client_both, client_account, job_id, b"text\nred shoe\n", how=how, content_type=CSV
    )
    assert (outcome.status, outcome.slug) == (422, "external-id-field-missing")
    assert outcome.body["errors"] == [{"line": 1, "pointer": "#/sku", "detail": "no such column"}]
    assert count_items(db, job_id) == 0


@pytest.mark.parametrize("how", HOWS)
def test_an_upload_may_name_its_own_external_id_key(
    how: How, client_both: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client_both, client_account)
    rows = [{"image_id": 17, "text": "a"}, {"image_id": "x/18", "text": "b"}]
    body = json.dumps(rows).encode()
    params = {"external_id_field": "image_id"}
    first = import_file(
        client_both,
        client_account,
        job_id,
        body,
        how=how,
        content_type="application/json",
        **params,
    )
    assert first.report["created"] == 2
    assert [external_id for external_id, _ in stored(db, job_id)] == ["17", "x/18"]
    again = import_file(
        client_both,
        client_account,
        job_id,
        body,
        how=how,
        content_type="application/json",
        **params,
    )
    assert (again.report["created"], again.report["unchanged"]) == (0, 2)
    job = client_both.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert job["external_id_field"] is None  # the upload's choice is not the job's


@pytest.mark.parametrize("how", HOWS)
def test_rows_without_the_declared_key_or_disagreeing_with_it_are_bad_rows(
    how: How, client_both: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client_both, client_account, external_id_field="sku")
    rows = [
        {"sku": "A-1", "text": "fine"},
        {"text": "no sku"},
        {"sku": "A-3", "external_id": "other", "text": "two ids"},
        {"sku": True, "text": "not an id"},
        {"sku": "A-5", "external_id": "A-5", "text": "the same id twice is fine"},
    ]
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    outcome = import_file(client_both, client_account, job_id, body, how=how)
    assert (outcome.status, outcome.slug) == (422, "validation-failed")
    assert [(e["line"], e["pointer"]) for e in outcome.body["errors"]] == [
        (2, "#/sku"),
        (3, "#/external_id"),
        (4, "#/sku"),
    ]
    assert count_items(db, job_id) == 0
    skipped = import_file(client_both, client_account, job_id, body, how=how, mode="skip-invalid")
    assert [external_id for external_id, _ in stored(db, job_id)] == ["A-1", "A-5"]
    assert skipped.report["rejected"] == 3


def test_the_declared_field_must_be_a_field_name(
    client: TestClient, client_account: Account
) -> None:
    for bad in ("", "a\x00b", "x" * 129):
        response = client.post(
            "/v1/jobs", json=job_body(external_id_field=bad), headers=client_account.headers
        )
        assert assert_problem(response, 422)["errors"][0]["pointer"] == "#/external_id_field"
    job_id = create_job(client, client_account)
    response = client.post(
        f"/v1/jobs/{job_id}/items?external_id_field=",
        content=b'{"text": "a"}\n',
        headers={**client_account.headers, "Content-Type": "application/x-ndjson"},
    )
    assert assert_problem(response, 422)["errors"][0]["parameter"] == "external_id_field"


def test_openapi_documents_the_external_id_field(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    create = spec["components"]["schemas"]["JobCreate"]["properties"]
    assert "external id" in create["external_id_field"]["description"]
    upload = spec["paths"]["/v1/jobs/{job_id}/items"]["post"]
    assert "external_id_field" in [p["name"] for p in upload["parameters"]]
    refusals = upload["responses"]["422"]["content"]["application/problem+json"]["examples"]
    assert {"external-id-field-missing", "empty-dataset", "too-many-unusable-lines"} <= set(
        refusals
    )
    assert (
        "decompressed-too-large"
        in upload["responses"]["413"]["content"]["application/problem+json"]["examples"]
    )


@pytest.mark.parametrize("how", HOWS)
def test_declaring_the_default_external_id_column_works(
    how: How, client_both: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client_both, client_account, external_id_field="external_id")
    body = b"external_id,text\nA-1,red shoe\nA-2,blue shoe\n"
    first = import_file(client_both, client_account, job_id, body, how=how, content_type=CSV)
    assert (first.report["created"], first.report["rejected"]) == (2, 0)
    assert [external_id for external_id, _ in stored(db, job_id)] == ["A-1", "A-2"]
    again = import_file(client_both, client_account, job_id, body, how=how, content_type=CSV)
    assert (again.report["created"], again.report["unchanged"]) == (0, 2)

    rows = [{"external_id": "A-3", "text": "green"}, {"text": "no id"}]
    rows.append({"external_id": "", "text": "empty id"})
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    outcome = import_file(client_both, client_account, job_id, body, how=how)
    assert (outcome.status, outcome.slug) == (422, "validation-failed")
    assert [(e["line"], e["pointer"]) for e in outcome.body["errors"]] == [
        (2, "#/external_id"),
        (3, "#/external_id"),
    ]
    assert count_items(db, job_id) == 2


def test_a_drafts_external_id_field_can_be_changed_and_unset(
    client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client, client_account)
    url, headers = f"/v1/jobs/{job_id}", client_account.headers
    response = client.patch(url, json={"external_id_field": "sku"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["external_id_field"] == "sku"
    outcome = import_file(client, client_account, job_id, PRODUCTS, how="inline", content_type=CSV)
    assert outcome.report["created"] == 2
    assert [external_id for external_id, _ in stored(db, job_id)] == ["A-1", "A-2"]

    bad = client.patch(url, json={"external_id_field": ""}, headers=headers)
    assert assert_problem(bad, 422)["errors"][0]["pointer"] == "#/external_id_field"
    assert client.get(url, headers=headers).json()["external_id_field"] == "sku"

    response = client.patch(url, json={"external_id_field": None}, headers=headers)
    assert response.json()["external_id_field"] is None


def test_an_active_jobs_external_id_field_is_frozen(
    client: TestClient, client_account: Account
) -> None:
    job_id = active_job(client, client_account)
    response = client.patch(
        f"/v1/jobs/{job_id}", json={"external_id_field": "sku"}, headers=client_account.headers
    )
    problem = assert_problem(response, 409, "job-frozen")
    assert problem["errors"] == [
        {"pointer": "#/external_id_field", "detail": "frozen after activation"}
    ]
    job = client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert job["external_id_field"] is None
