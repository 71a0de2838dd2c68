from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.consensus.service import refresh_item_results
from app.core.clock import utcnow
from app.core.db import Database
from app.core.security import pseudonym
from app.jobs.service import job_schema
from app.models import Answer, Assignment, AssignmentStatus, Item, Job, Task, TaskItem
from tests.jobs.factories import BOXES, active_job, create_job, reviews
from tests.support import Account, assert_problem


def answer_all(
    db: Database,
    job_id: int,
    annotators: list[Account],
    answer_for: Callable[[int, int], dict[str, Any]],
) -> None:
    """Every annotator submits every task of the job; `answer_for(annotator index, item id)`."""
    now = utcnow()
    with db.transaction() as session:
        job = session.get_one(Job, job_id)
        tasks = session.execute(
            select(Task.id, TaskItem.item_id)
            .join(TaskItem, TaskItem.task_id == Task.id)
            .where(Task.job_id == job_id)
        ).all()
        for n, annotator in enumerate(annotators):
            for task_id, item_id in tasks:
                assignment = Assignment(
                    task_id=task_id,
                    job_id=job_id,
                    annotator_id=annotator.id,
                    status=AssignmentStatus.submitted,
                    claimed_at=now,
                    lease_expires_at=now,
                    last_seen_at=now,
                    submitted_at=now,
                )
                session.add(assignment)
                session.flush()
                session.add(
                    Answer(
                        assignment_id=assignment.id,
                        job_id=job_id,
                        item_id=item_id,
                        annotator_id=annotator.id,
                        value=answer_for(n, item_id),
                        created_at=now,
                    )
                )
        session.flush()
        refresh_item_results(session, job, job_schema(job), [item for _, item in tasks])


def prepared_job(
    client: TestClient, owner: Account, annotators: list[Account], count: int = 6
) -> int:
    """This file's job (kept: a gold row with its own answer key, consensus by majority vote)."""
    rows = [*reviews(count), {"text": "gold", "gold_answer": {"sentiment": "negative"}}]
    return active_job(client, owner, rows, consensus_method="majority_vote")  # vote shares


def test_jsonl_export_has_consensus_and_pseudonymous_raw_answers(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    annotators = [make_account("annotator") for _ in range(3)]
    job_id = prepared_job(client, client_account, annotators)
    labels = ["positive", "positive", "negative"]
    answer_all(db, job_id, annotators, lambda n, _: {"sentiment": labels[n]})

    response = client.get(f"/v1/jobs/{job_id}/export", headers=client_account.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in response.text.splitlines()]
    assert len(records) == 6  # gold items are not exported by default
    first = records[0]
    assert first["external_id"] == "r0"
    assert first["data"] == {"text": "review number 0"}
    assert first["consensus"] == {"sentiment": "positive"}
    assert abs(first["confidence"] - 2 / 3) < 1e-9
    assert first["answer_count"] == 3
    secret = db.settings.resolved_secret_key()
    expected = {pseudonym(secret, f"client:{client_account.id}", a.id) for a in annotators}
    assert {a["annotator"] for a in first["answers"]} == expected
    assert not any(str(a.id) == x["annotator"] for a in annotators for x in first["answers"])

    with_gold = client.get(
        f"/v1/jobs/{job_id}/export?include_gold=true", headers=client_account.headers
    ).text.splitlines()
    gold = [json.loads(line) for line in with_gold if json.loads(line)["gold"]]
    assert len(with_gold) == 7
    assert gold[0]["gold_answer"] == {"sentiment": "negative"}


def test_csv_export_parses_back_flat(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    annotators = [make_account("annotator") for _ in range(2)]
    job_id = prepared_job(client, client_account, annotators, count=4)
    answer_all(db, job_id, annotators, lambda n, _: {"sentiment": "neutral"})
    text = client.get(f"/v1/jobs/{job_id}/export?format=csv", headers=client_account.headers).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4
    assert rows[0]["data.text"] == "review number 0"
    assert rows[0]["consensus.sentiment"] == "neutral"
    assert rows[0]["answer_count"] == "2"
    assert len(json.loads(rows[0]["answers"])) == 2


def test_label_studio_export_has_one_annotation_per_answer(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    annotators = [make_account("annotator") for _ in range(3)]
    job_id = prepared_job(client, client_account, annotators, count=5)
    answer_all(db, job_id, annotators, lambda n, _: {"sentiment": "positive"})
    tasks = client.get(
        f"/v1/jobs/{job_id}/export?format=label-studio", headers=client_account.headers
    ).json()
    assert len(tasks) == 5
    assert len(tasks[0]["annotations"]) == 3
    result = tasks[0]["annotations"][0]["result"][0]
    assert result["from_name"] == "sentiment"
    assert result["value"]["choices"] == ["positive"]
    assert tasks[0]["predictions"][0]["score"] == 1.0


def test_coco_export_for_box_jobs(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    annotators = [make_account("annotator") for _ in range(3)]
    job_id = active_job(
        client,
        client_account,
        [{"image": f"img{n}.jpg", "width": 640, "height": 480} for n in range(4)],
        label_schema=BOXES,
    )
    box = {"x": 10, "y": 20, "width": 30, "height": 40, "label": "person"}
    answer_all(db, job_id, annotators, lambda n, _: {"objects": [box]})

    coco = client.get(
        f"/v1/jobs/{job_id}/export?format=coco", headers=client_account.headers
    ).json()
    assert [c["name"] for c in coco["categories"]] == ["car", "person"]
    assert len(coco["images"]) == 4
    assert coco["images"][0]["width"] == 640
    assert len(coco["annotations"]) == 4
    assert coco["annotations"][0]["bbox"] == [10, 20, 30, 40]
    assert coco["annotations"][0]["category_id"] == 2
    image_ids = {i["id"] for i in coco["images"]}
    assert {a["image_id"] for a in coco["annotations"]} == image_ids


def test_coco_needs_a_box_job(client: TestClient, client_account: Account) -> None:
    job_id = create_job(client, client_account)
    assert_problem(
        client.get(f"/v1/jobs/{job_id}/export?format=coco", headers=client_account.headers),
        409,
        "export-format-unavailable",
    )


def test_export_of_an_empty_job(client: TestClient, client_account: Account, db: Database) -> None:
    job_id = create_job(client, client_account)
    assert client.get(f"/v1/jobs/{job_id}/export", headers=client_account.headers).text == ""
    with db.read_session() as session:
        assert session.scalar(select(Item.id).where(Item.job_id == job_id)) is None
