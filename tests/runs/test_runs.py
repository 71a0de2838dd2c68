"""Background runs: their owner (or an admin) reads state and progress; nobody else learns they
exist. Services move a run queued -> running -> succeeded | failed, and the first outcome wins."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core.db import Database
from app.core.errors import NotFound, ValidationFailed
from app.models import OutboxJob, RunState
from app.runs import service as runs
from tests.support import Account, assert_problem
from tests.workers import jobs  # noqa: F401  (registers test.count)


def new_run(db: Database, owner: Account | None, kind: str = "import", **kw: object) -> int:
    with db.transaction() as session:
        return runs.create_run(
            session,
            kind=kind,
            owner_id=owner.id if owner else None,
            **kw,  # type: ignore[arg-type]
        ).id


def test_the_owner_reads_a_run_with_its_progress(
    client: TestClient, db: Database, client_account: Account
) -> None:
    run_id = new_run(db, client_account, total=100)
    with db.transaction() as session:
        runs.set_progress(session, run_id, rows_read=40, accepted=38, rejected=2)
        runs.add_progress(session, run_id, rows_read=10, accepted=10)

    body = client.get(f"/v1/runs/{run_id}", headers=client_account.headers).json()
    assert body["state"] == "running"
    assert body["total"] == 100
    assert body["counters"] == {"rows_read": 50, "accepted": 48, "rejected": 2}
    assert body["started_at"] is not None
    assert body["finished_at"] is None
    assert body["error"] is None


def test_a_run_is_404_for_anyone_but_its_owner_and_admins(
    client: TestClient,
    db: Database,
    client_account: Account,
    make_account: object,
    admin: Account,
    annotator: Account,
) -> None:
    run_id = new_run(db, client_account)
    other_client = make_account("client")  # type: ignore[operator]
    for stranger in (other_client, annotator):
        assert_problem(client.get(f"/v1/runs/{run_id}", headers=stranger.headers), 404)
    assert_problem(client.get("/v1/runs/999999", headers=client_account.headers), 404)
    assert client.get(f"/v1/runs/{run_id}", headers=admin.headers).json()["id"] == run_id
    system_run = new_run(db, None, kind="housekeeping")
    assert_problem(client.get(f"/v1/runs/{system_run}", headers=client_account.headers), 404)
    assert client.get(f"/v1/runs/{system_run}", headers=admin.headers).status_code == 200


def test_listing_shows_only_my_runs_paged_and_filtered(
    client: TestClient, db: Database, client_account: Account, annotator: Account
) -> None:
    mine = [new_run(db, client_account, kind="import") for _ in range(3)]
    mine.append(new_run(db, client_account, kind="export"))
    new_run(db, annotator)
    with db.transaction() as session:
        runs.finish_run(session, mine[0])

    first = client.get("/v1/runs?limit=2", headers=client_account.headers).json()
    second = client.get(
        f"/v1/runs?limit=2&after={first['next_cursor']}", headers=client_account.headers
    ).json()
    assert [r["id"] for r in first["items"] + second["items"]] == mine
    assert second["next_cursor"] is None

    exports = client.get("/v1/runs?kind=export", headers=client_account.headers).json()
    assert [r["id"] for r in exports["items"]] == [mine[3]]
    done = client.get("/v1/runs?state=succeeded", headers=client_account.headers).json()
    assert [r["id"] for r in done["items"]] == [mine[0]]
    assert_problem(client.get("/v1/runs?state=bogus", headers=client_account.headers), 422)


def test_creating_a_run_with_a_job_enqueues_it_in_the_same_transaction(db: Database) -> None:
    with db.session() as session:
        run = runs.create_run(session, kind="import", owner_id=None, job="test.count")
        session.rollback()
    with db.read_session() as session:
        assert session.query(OutboxJob).count() == 0

    with db.transaction() as session:
        run = runs.create_run(session, kind="import", owner_id=None, job="test.count", job_ids=())
    with db.read_session() as session:
        [row] = session.query(OutboxJob).all()
        assert (row.name, row.args, row.run_id) == ("test.count", [run.id], run.id)


def test_the_first_outcome_wins(db: Database) -> None:
    succeeded, failed = new_run(db, None), new_run(db, None)
    with db.transaction() as session:
        runs.finish_run(session, succeeded, result={"file_id": 7})
        runs.fail_run(session, succeeded, ValidationFailed("too late"))
        runs.add_progress(session, succeeded, rows_read=5)
        runs.fail_run(session, failed, ValidationFailed("bad header", errors=[{"line": 1}]))
        runs.finish_run(session, failed)
    with db.read_session() as session:
        ok, bad = runs.get_run(session, succeeded), runs.get_run(session, failed)
    assert ok.state is RunState.succeeded
    assert ok.result == {"file_id": 7}
    assert ok.error is None
    assert ok.counters == {}
    assert bad.state is RunState.failed
    assert bad.error is not None
    assert bad.error["type"] == "/problems/validation-failed"
    assert bad.error["errors"] == [{"line": 1}]
    assert bad.finished_at is not None


def test_progress_counters_are_checked(db: Database) -> None:
    run_id = new_run(db, None)
    with db.session() as session:
        with pytest.raises(ValueError, match="lower_snake_case"):
            runs.set_progress(session, run_id, **{"Rows Read": 1})
        with pytest.raises(TypeError, match="int"):
            runs.add_progress(session, run_id, rows=1.5)  # type: ignore[arg-type]
        with pytest.raises(NotFound):
            runs.mark_running(session, 424242)
