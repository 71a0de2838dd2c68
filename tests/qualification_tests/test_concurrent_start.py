"""Sixteen simultaneous starts of the same test by one annotator make one attempt (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.db import Database
from app.models import QualificationAttempt
from tests.qualification_tests.factories import create_test, make_skill
from tests.support import Account

pytestmark = pytest.mark.commits  # threads race on real commits

THREADS = 16


@pytest.mark.postgresql
def test_concurrent_starts_give_one_open_attempt(
    app: FastAPI, client: TestClient, db: Database, admin: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    test = create_test(client, admin)
    barrier = threading.Barrier(THREADS)
    results: list[tuple[int, int]] = []
    lock = threading.Lock()

    def start() -> None:
        with TestClient(app) as own:
            barrier.wait()
            response = own.post(
                f"/v1/annotator/qualification-tests/{test['id']}/attempts",
                headers=annotator.headers,
            )
            with lock:
                results.append((response.status_code, response.json().get("id")))

    threads = [threading.Thread(target=start) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == THREADS
    assert {status for status, _ in results} <= {200, 201}
    assert sorted(status for status, _ in results).count(201) == 1
    assert len({attempt_id for _, attempt_id in results}) == 1
    with db.session() as session:
        count = session.scalar(select(func.count()).select_from(QualificationAttempt))
    assert count == 1
