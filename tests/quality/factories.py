"""Small factories for judging tests: annotators doing tasks through the API on a controlled
clock, and the quality jobs run by hand (jobs with control items: `tests.jobs.factories`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core import clock
from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.models import Assignment
from app.models.quality import QualityAction
from app.quality import enforcement, tracking
from tests.support import Account


def do_task(
    client: TestClient,
    who: Account,
    job_id: int,
    *,
    label: str | Callable[[str], str] = "positive",
    gold_label: str = "positive",
    seconds: float = 30,
) -> dict[str, Any] | None:
    """Claim the next task of the job, spend `seconds` on it (the clock moves), submit; returns
    {"id", "gold", "feedback"} or None when there was nothing to claim. Control items (texts
    "control ...", as `tests.jobs.factories.controls` makes them) are answered with `gold_label`,
    the others with `label` (or label(text))."""
    claimed = client.post("/v1/assignments/next", json={"job_id": job_id}, headers=who.headers)
    assert claimed.status_code == 200, claimed.text
    if not claimed.json()["assignments"]:
        return None
    [assignment] = claimed.json()["assignments"]
    texts = [item["data"]["text"] for item in assignment["items"]]
    gold = any(t.startswith("control") for t in texts)
    answers = [
        {
            "sentiment": gold_label
            if t.startswith("control")
            else (label(t) if callable(label) else label)
        }
        for t in texts
    ]
    clock.travel(timedelta(seconds=seconds))
    done = client.post(
        f"/v1/assignments/{assignment['id']}/submit", json={"answers": answers}, headers=who.headers
    )
    assert done.status_code == 200, done.text
    return {"id": assignment["id"], "gold": gold, "feedback": done.json()["feedback"]}


def do_tasks(
    client: TestClient, who: Account, job_id: int, count: int, **kwargs: Any
) -> list[dict[str, Any]]:
    done = []
    for _ in range(count):
        task = do_task(client, who, job_id, **kwargs)
        if task is None:
            break
        done.append(task)
    return done


def refresh(db: Database, settings: Settings, *annotators: Account) -> list[Any]:
    """Refresh the annotators' figures and apply the rules, as the periodic job does; returns
    the actions added."""
    with db.transaction() as session:
        now = utcnow()
        refreshed = tracking.refresh_annotators(session, settings, [a.id for a in annotators], now)
        return enforcement.enforce(session, settings, refreshed, now)


def actions_of(db: Database, *annotators: Account) -> list[Any]:
    """Every rule action on the annotators, oldest first: those the submit recorded (a submit
    with gold items runs the rules at once) and those refreshes added."""
    with db.read_session() as session:
        return list(
            session.scalars(
                select(QualityAction)
                .where(QualityAction.annotator_id.in_([a.id for a in annotators]))
                .order_by(QualityAction.id)
            )
        )


def assignment(db: Database, assignment_id: int) -> Assignment:
    with db.read_session() as session:
        return session.scalars(select(Assignment).where(Assignment.id == assignment_id)).one()
