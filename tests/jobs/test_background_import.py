"""Large uploads are imported by a background run, through the real (in-process) job engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import Database
from app.jobs import background, importing
from app.main import create_app
from app.models.background import OutboxJob
from app.runs import service as runs
from tests.jobs.factories import create_job, jsonl, reviews, upload
from tests.jobs.test_dataset_import import count_items
from tests.jobs.uploads import import_client
from tests.support import Account
from tests.workers.background import wait_until
from workers.in_process import InProcessRunner
from workers.runner import JobRunner

pytestmark = pytest.mark.commits  # background workers and processes see only what was committed


@pytest.fixture
def staged_client(db: Database, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    settings = db.settings.model_copy(
        update={"import_inline_max_bytes": 200, "upload_dir": tmp_path / "uploads"}
    )
    runner = InProcessRunner(
        settings, db, scheduler=False, relay_interval=0.05, worker_timeout_ms=100
    )
    runner.start()
    try:
        with TestClient(create_app(settings, db)) as client:
            yield client, tmp_path / "uploads"
    finally:
        runner.stop()


def finished_run(client: TestClient, owner: Account, url: str) -> dict[str, object]:
    def done() -> dict[str, object] | None:
        run: dict[str, object] = client.get(url, headers=owner.headers).json()
        return run if run["state"] in ("succeeded", "failed") else None

    return wait_until(done, timeout=120, what="the import run to finish")


def test_a_large_upload_is_imported_by_a_background_run(
    staged_client: tuple[TestClient, Path], client_account: Account, db: Database
) -> None:
    client, uploads = staged_client
    job_id = create_job(client, client_account)
    response = upload(client, client_account, job_id, jsonl(reviews(50)))
    assert response.status_code == 202, response.text
    status_url = response.json()["status_url"]
    assert response.headers["location"] == status_url

    run = finished_run(client, client_account, status_url)
    assert run["state"] == "succeeded", run
    assert run["counters"] == {"rows_read": 50, "accepted": 50, "rejected": 0}
    assert run["result"]["created"] == 50  # type: ignore[index]
    assert count_items(db, job_id) == 50
    assert list(uploads.iterdir()) == []  # the staged file is gone


def test_a_background_all_or_nothing_import_with_bad_rows_changes_nothing(
    staged_client: tuple[TestClient, Path], client_account: Account, db: Database
) -> None:
    client, uploads = staged_client
    job_id = create_job(client, client_account)
    rows = [*reviews(20), {"external_id": "bad"}]  # no text
    response = upload(client, client_account, job_id, jsonl(rows))
    run = finished_run(client, client_account, response.json()["status_url"])
    assert run["state"] == "failed"
    error = run["error"]
    assert error["status"] == 422  # type: ignore[index]
    assert error["errors"][0]["line"] == 21  # type: ignore[index]
    assert count_items(db, job_id) == 0
    assert list(uploads.iterdir()) == []


def test_another_client_cannot_read_the_run(
    staged_client: tuple[TestClient, Path],
    client_account: Account,
    make_account: object,
) -> None:
    client, _ = staged_client
    job_id = create_job(client, client_account)
    response = upload(client, client_account, job_id, jsonl(reviews(30)))
    other = make_account("client")  # type: ignore[operator]
    assert client.get(response.json()["status_url"], headers=other.headers).status_code == 404
    finished_run(client, client_account, response.json()["status_url"])


def test_small_uploads_can_be_sent_to_the_background_on_request(
    staged_client: tuple[TestClient, Path], client_account: Account
) -> None:
    client, _ = staged_client
    job_id = create_job(client, client_account)
    forced = client.post(
        f"/v1/jobs/{job_id}/items?background=true",
        content=jsonl(reviews(1)),
        headers={**client_account.headers, "Content-Type": "application/x-ndjson"},
    )
    assert forced.status_code == 202
    inline = client.post(
        f"/v1/jobs/{job_id}/items?background=false",
        content=jsonl(reviews(9)),
        headers={**client_account.headers, "Content-Type": "application/x-ndjson"},
    )
    assert inline.status_code == 201
    finished_run(client, client_account, forced.json()["status_url"])


def test_the_queued_import_names_its_format_and_mode(
    staged_client: tuple[TestClient, Path], client_account: Account, db: Database
) -> None:
    client, _ = staged_client
    job_id = create_job(client, client_account)
    response = client.post(
        f"/v1/jobs/{job_id}/items?background=true&mode=skip-invalid",
        content=jsonl(reviews(2)),
        headers={**client_account.headers, "Content-Type": "application/x-ndjson"},
    )
    run_id = response.json()["run_id"]
    with db.session() as session:
        args = session.scalars(select(OutboxJob.args).where(OutboxJob.run_id == run_id)).one()
    assert args == [run_id, job_id, "jsonl", "skip-invalid", "report"]
    finished_run(client, client_account, response.json()["status_url"])


def test_an_import_queued_with_positional_codes_by_the_previous_release_still_runs(
    client: TestClient, client_account: Account, db: Database, tmp_path: Path
) -> None:
    job_id = create_job(client, client_account)
    settings = db.settings.model_copy(update={"upload_dir": tmp_path})
    with db.transaction() as session:
        run_id = runs.create_run(session, kind="import", owner_id=client_account.id).id
    staged = background.staged_path(settings, run_id)
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(jsonl([*reviews(3), {"external_id": "no-text"}]))

    # 2 and 1 were jsonl and skip-invalid in the lists the previous release indexed.
    JobRunner(settings, db).run(background.IMPORT_JOB, (run_id, job_id, 2, 1), run_id=run_id)

    run = client.get(f"/v1/runs/{run_id}", headers=client_account.headers).json()
    assert run["state"] == "succeeded", run
    assert (run["result"]["format"], run["result"]["mode"]) == ("jsonl", "skip-invalid")
    assert run["counters"] == {"rows_read": 4, "accepted": 3, "rejected": 1}
    assert count_items(db, job_id) == 3


def test_a_background_import_uses_label_studio_annotations_as_asked(
    staged_client: tuple[TestClient, Path], client_account: Account, db: Database
) -> None:
    client, _ = staged_client
    job_id = create_job(client, client_account)
    tasks = [
        {
            "id": n,
            "data": {"text": f"review {n}"},
            "annotations": [
                {
                    "ground_truth": True,
                    "result": [
                        {
                            "from_name": "sentiment",
                            "to_name": "text",
                            "type": "choices",
                            "value": {"choices": ["neutral"]},
                        }
                    ],
                }
            ],
        }
        for n in range(20)
    ]
    response = client.post(
        f"/v1/jobs/{job_id}/items?background=true&annotations=gold",
        content=json.dumps(tasks).encode(),
        headers={**client_account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    with db.session() as session:
        args = session.scalars(
            select(OutboxJob.args).where(OutboxJob.run_id == response.json()["run_id"])
        ).one()
    assert args[-1] == "gold"
    run = finished_run(client, client_account, response.json()["status_url"])
    assert run["state"] == "succeeded", run
    result = run["result"]
    assert isinstance(result, dict)
    assert (result["gold"], result["gold_from_annotations"], result["annotations"]) == (20, 20, 20)


def outbox_row(db: Database, run_id: int) -> OutboxJob:
    with db.read_session() as session:
        return session.scalars(select(OutboxJob).where(OutboxJob.run_id == run_id)).one()


def test_a_background_import_of_deeply_nested_json_fails_at_once_with_a_pointer(
    db: Database, tmp_path: Path, client_account: Account
) -> None:
    with import_client(db, tmp_path) as client:
        job_id = create_job(client, client_account)
        body = b'[{"text": "fine"}, ' + b"[" * 100_000 + b"]" * 100_000 + b"]"
        response = client.post(
            f"/v1/jobs/{job_id}/items?background=true",
            content=body,
            headers={**client_account.headers, "Content-Type": "application/json"},
        )
        run = finished_run(client, client_account, response.json()["status_url"])
    assert run["state"] == "failed", run
    error = run["error"]
    assert isinstance(error, dict)
    assert (error["status"], error["type"]) == (422, "/problems/unreadable-dataset")
    assert error["errors"][0]["pointer"] == "#/1"
    # A refusal is final: done at its first delivery (no failed attempt), never retried.
    row = outbox_row(db, response.json()["run_id"])
    assert (row.attempts, row.done_at is not None, row.dead_at) == (0, True, None)
    assert count_items(db, job_id) == 0


def test_a_background_import_failing_unexpectedly_ends_failed_after_two_retries(
    db: Database, tmp_path: Path, client_account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(importing, "check_dataset", broken)
    with import_client(db, tmp_path) as client:
        job_id = create_job(client, client_account)
        response = client.post(
            f"/v1/jobs/{job_id}/items?background=true",
            content=jsonl(reviews(5)),
            headers={**client_account.headers, "Content-Type": "application/x-ndjson"},
        )
        run = finished_run(client, client_account, response.json()["status_url"])
        row = wait_until(
            lambda: (r := outbox_row(db, response.json()["run_id"])).dead_at and r,
            what="the job to be dead-lettered",
        )
    assert run["state"] == "failed"
    error = run["error"]
    assert isinstance(error, dict)
    assert (error["status"], error["type"]) == (500, "/problems/background-job-failed")
    assert row.attempts == background.IMPORT_RETRIES + 1
    assert count_items(db, job_id) == 0
