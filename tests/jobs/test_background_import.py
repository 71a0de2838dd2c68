"""Large uploads are imported by a background run, through the real (in-process) job engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.db import Database
from app.main import create_app
from tests.jobs.factories import create_job, jsonl, reviews, upload
from tests.jobs.test_dataset_import import count_items
from tests.support import Account
from tests.workers.background import wait_until
from workers.in_process import InProcessRunner


@pytest.fixture
def staged_client(db: Database, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    settings = db.settings.model_copy(
        update={"import_inline_max_bytes": 200, "upload_dir": tmp_path / "uploads"}
    )
    runner = InProcessRunner(settings, db, scheduler=False, relay_interval=0.05)
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

    return wait_until(done, timeout=30, what="the import run to finish")


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
