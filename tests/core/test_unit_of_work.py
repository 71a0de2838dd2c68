"""A unit of work that writes must end in a commit or a rollback: the request's session refuses
to end quietly with writes pending (they would vanish), so a forgotten commit fails the request
(500, logged with its stack) and every test that exercises it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.core.db import Database, UncommittedWork, check_finished
from app.core.security import DbSession
from app.models import User
from tests.support import Account


def test_an_endpoint_that_forgets_to_commit_fails_instead_of_losing_its_writes(
    app: FastAPI, db: Database, make_account: Callable[..., Account]
) -> None:
    someone = make_account("annotator")

    @app.post("/test/forgets-to-commit")
    def forgets(session: DbSession) -> dict[str, str]:
        session.get_one(User, someone.id).display_name = "changed"
        session.flush()
        return {"ok": "yes"}

    @app.post("/test/commits")
    def commits(session: DbSession) -> dict[str, str]:
        session.get_one(User, someone.id).display_name = "committed"
        session.commit()
        return {"ok": "yes"}

    with TestClient(app) as client:
        forgot = client.post("/test/forgets-to-commit")
        assert forgot.status_code == 500
        assert forgot.json()["type"] == "/problems/internal-error"
    with db.read_session() as session:  # rolled back, not half-done
        assert session.scalar(select(User.display_name).where(User.id == someone.id)) != ("changed")
    with TestClient(app) as client:
        assert client.post("/test/commits").status_code == 200
    with db.read_session() as session:
        assert session.scalar(select(User.display_name).where(User.id == someone.id)) == (
            "committed"
        )


def test_core_statements_count_as_writes_until_committed_or_rolled_back(
    db: Database, make_account: Callable[..., Account]
) -> None:
    someone = make_account("annotator")
    with db.session() as session:
        check_finished(session)  # nothing written yet
        session.execute(update(User).where(User.id == someone.id).values(display_name="x"))
        with pytest.raises(UncommittedWork):
            check_finished(session)
        session.rollback()
        check_finished(session)
        session.execute(update(User).where(User.id == someone.id).values(display_name="y"))
        session.commit()
        check_finished(session)
        session.get_one(User, someone.id).display_name = "pending, not flushed"
        with pytest.raises(UncommittedWork):
            check_finished(session)
        session.rollback()
