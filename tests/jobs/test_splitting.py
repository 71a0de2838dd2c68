from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import Database
from app.models import Item, Task, TaskItem
from tests.jobs.factories import active_job, reviews
from tests.support import Account


def task_layout(db: Database, job_id: int) -> list[list[tuple[int, bool]]]:
    """[(item id, is gold) in slot order] per task, in task order."""
    with db.read_session() as session:
        rows = session.execute(
            select(TaskItem.task_id, TaskItem.item_id, Item.is_gold)
            .join(Item, Item.id == TaskItem.item_id)
            .join(Task, Task.id == TaskItem.task_id)
            .where(Task.job_id == job_id)
            .order_by(Task.order_key, TaskItem.task_id, TaskItem.position)
        ).all()
    tasks: dict[int, list[tuple[int, bool]]] = {}
    for task_id, item_id, is_gold in rows:
        tasks.setdefault(task_id, []).append((item_id, is_gold))
    return list(tasks.values())


def test_tasks_hold_regular_items_only_gold_is_chosen_at_claim(
    client: TestClient, client_account: Account, db: Database
) -> None:
    regular = reviews(400)
    gold = [{"text": f"gold {n}", "gold_answer": {"sentiment": "negative"}} for n in range(10)]
    job_id = active_job(client, client_account, regular + gold, items_per_task=5, gold_ratio=0.2)

    tasks = task_layout(db, job_id)
    assert len(tasks) == 80
    assert all(len(task) == 5 for task in tasks)
    slots = [item for task in tasks for item, _ in task]
    assert sorted(slots) == sorted(set(slots))  # each regular item once
    assert not any(g for task in tasks for _, g in task)  # gold is added at claim instead
    with db.read_session() as session:
        assert not any(session.scalars(select(Task.has_gold).where(Task.job_id == job_id)))


def test_one_item_per_task_makes_no_gold_tasks(
    client: TestClient, client_account: Account, db: Database
) -> None:
    rows = [*reviews(90), {"text": "g", "gold_answer": {"sentiment": "neutral"}}]
    job_id = active_job(client, client_account, rows, gold_ratio=0.1)
    tasks = task_layout(db, job_id)
    assert len(tasks) == 90
    assert all(len(task) == 1 and not task[0][1] for task in tasks)


def test_no_gold_items_means_no_gold_slots(
    client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = active_job(client, client_account, items=10, items_per_task=3, gold_ratio=0.3)
    tasks = task_layout(db, job_id)
    assert [len(t) for t in tasks] == [3, 3, 3, 1]
    assert not any(g for task in tasks for _, g in task)


def test_uncertainty_order_puts_least_confident_prelabels_first(
    client: TestClient, client_account: Account, db: Database
) -> None:
    scores = [0.9, 0.2, 0.6, 0.4]
    rows = [
        {
            "text": f"t{n}",
            "external_id": f"e{n}",
            "prelabel": {"sentiment": "positive"},
            "prelabel_score": s,
        }
        for n, s in enumerate(scores)
    ]
    job_id = active_job(client, client_account, rows, task_order="uncertainty")
    with db.read_session() as session:
        ordered = session.scalars(
            select(Item.prelabel_score)
            .join(TaskItem, TaskItem.item_id == Item.id)
            .join(Task, Task.id == TaskItem.task_id)
            .where(Task.job_id == job_id)
            .order_by(Task.order_key)
        ).all()
    assert ordered == sorted(scores)
