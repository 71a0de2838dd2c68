"""16 threads on PostgreSQL approve, reject, auto-approve and appeal the same assignments at
once: every assignment's review history stays one consistent chain ending in its status, every
task counts exactly its live work, and a judgment is never appealed twice."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db import Database
from app.core.errors import TesseraError
from app.models import (
    AnnotatorStats,
    Appeal,
    AppealKind,
    Assignment,
    AssignmentStatus,
    Job,
    QualityAction,
    ReviewDecision,
    Task,
)
from app.quality import appeals, enforcement, review, tracking
from tests.jobs.factories import active_job
from tests.quality.factories import do_tasks
from tests.support import Account

pytestmark = pytest.mark.commits  # threads race on real commits

THREADS = 16
OPERATIONS = 25


@pytest.mark.postgresql
def test_concurrent_reviews_and_appeals_keep_every_history_consistent(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    db: Database,
) -> None:
    job_id = active_job(client, client_account, items=40, overlap={"min": 1})
    ids = [t["id"] for t in do_tasks(client, annotator, job_id, 40)]
    wide = Database(db.settings.model_copy(update={"db_pool_size": THREADS + 2}))
    # Auto-approval races too, over the first ten submits only (do_tasks spaced them 30 s).
    with db.read_session() as session:
        tenth = sorted(a.submitted_at for a in session.scalars(select(Assignment)))[9]
    days = wide.settings.quality_auto_approve_days
    auto_now = tenth + timedelta(days=days, seconds=1)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def act(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(OPERATIONS):
            action = rng.choice(["approve", "reject", "reject", "reject", "auto", "appeal"])
            picked = rng.sample(ids, rng.randint(1, 4))
            try:
                with wide.transaction() as session:
                    job = session.get_one(Job, job_id)
                    now = utcnow()
                    if action == "approve":
                        review.approve_assignments(
                            session, job, picked, actor_id=client_account.id, now=now
                        )
                    elif action == "reject":
                        review.reject_assignments(
                            session, job, picked, actor_id=client_account.id, reason="no", now=now
                        )
                    elif action == "auto":
                        review.auto_approve_due(session, wide.settings, auto_now)
                    else:
                        appeals.file_appeal(
                            session, annotator.id, picked[0], AppealKind.rejection, "look", now
                        )
                outcome = action
            except TesseraError as exc:
                outcome = f"{action}: {exc.slug}"
            except BaseException as exc:
                errors.append(exc)
                return
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=act, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    wide.dispose()
    assert not errors, errors
    assert all(outcomes[a] for a in ("approve", "reject", "appeal")), outcomes

    with db.read_session() as session:
        assignments = {a.id: a for a in session.scalars(select(Assignment))}
        history: dict[int, list[ReviewDecision]] = defaultdict(list)
        for decision in session.scalars(select(ReviewDecision).order_by(ReviewDecision.id)):
            history[decision.assignment_id].append(decision)
        tasks = list(session.scalars(select(Task)))
        appealed = Counter((a.assignment_id, a.kind) for a in session.scalars(select(Appeal)))
    for assignment_id in ids:
        chain = history[assignment_id]
        status = AssignmentStatus.submitted
        for decision in chain:
            assert decision.old_status is status, (assignment_id, chain)
            status = decision.new_status
        assert assignments[assignment_id].status is status
    live = Counter(
        a.task_id
        for a in assignments.values()
        if a.status in (AssignmentStatus.submitted, AssignmentStatus.approved)
    )
    for task in tasks:
        assert task.done_count == live[task.id], task.id
    assert max(appealed.values(), default=0) <= 1


@pytest.mark.postgresql
def test_concurrent_refreshes_of_the_same_annotators_add_nothing_twice(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    """Appeals and admins refresh one annotator while the scheduler's batch refreshes many: the
    per-annotator lock makes them take turns, so rows are rewritten whole and no rule action is
    recorded twice."""
    job_id = active_job(client, client_account, items=12, gold=12, overlap={"min": 1})
    client.put(
        f"/v1/quality/jobs/{job_id}/rules",
        json={"removal_min_gold_answers": 2, "identical_run_length": 3, "speed_floor_seconds": 10},
        headers=client_account.headers,
    )
    crowd = [make_account("annotator") for _ in range(3)]
    for who in crowd:
        # A control item in each claim: the second gold answer removes them.
        do_tasks(client, who, job_id, 2, seconds=5)
    ids = [who.id for who in crowd]
    wide = Database(db.settings.model_copy(update={"db_pool_size": THREADS + 2}))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def refresh(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        try:
            for _ in range(3):
                picked = rng.sample(ids, rng.randint(1, 3))
                with wide.transaction() as session:
                    now = utcnow()
                    done = tracking.refresh_annotators(session, wide.settings, picked, now)
                    enforcement.enforce(session, wide.settings, done, now)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    wide.dispose()
    assert not errors, errors
    with db.read_session() as session:
        actions = list(session.scalars(select(QualityAction)))
        stats = list(session.scalars(select(AnnotatorStats)))
    # Two identical-answer runs each (six alike answers, runs of 3), told apart by their end.
    recorded = Counter(
        (a.annotator_id, a.rule, a.assignment_id, a.evidence.get("last_answer_id")) for a in actions
    )
    assert max(recorded.values()) == 1
    assert {(a.annotator_id, a.rule.value) for a in actions} >= {
        (i, rule) for i in ids for rule in ("gold_accuracy", "fast_submit", "identical_answers")
    }
    assert len(stats) == 3 * 2  # overall and the job, once each


@pytest.mark.postgresql
def test_finding5_an_admin_overturn_and_the_clients_approval_of_the_same_work_never_deadlock(
    client: TestClient,
    client_account: Account,
    admin: Account,
    annotator: Account,
    db: Database,
) -> None:
    """Issue 22, finding 5: the admin locked the appeal then the assignment, the client the
    assignment then the appeal; 18 of 60 such pairs deadlocked. Both now lock the assignment
    first: every pair ends with the work approved once and its appeal settled."""
    pairs = 12
    job_id = active_job(client, client_account, items=pairs, overlap={"min": 1})
    ids = [t["id"] for t in do_tasks(client, annotator, job_id, pairs)]
    wide = Database(db.settings.model_copy(update={"db_pool_size": 2 * pairs + 2}))
    with wide.transaction() as session:
        job = session.get_one(Job, job_id)
        now = utcnow()
        review.reject_assignments(
            session, job, ids, actor_id=client_account.id, reason="no", now=now
        )
        appeal_ids = [
            appeals.file_appeal(session, annotator.id, i, AppealKind.rejection, "look", now).id
            for i in ids
        ]
    errors: list[BaseException] = []
    start = threading.Barrier(2 * pairs)

    def act(n: int) -> None:
        start.wait()
        try:
            with wide.transaction() as session:
                if n % 2:
                    appeals.resolve_appeal(
                        session,
                        wide.settings,
                        appeal_ids[n // 2],
                        overturn=True,
                        note="the guide agrees",
                        admin_id=admin.id,
                        now=utcnow(),
                    )
                else:
                    review.approve_assignments(
                        session,
                        session.get_one(Job, job_id),
                        [ids[n // 2]],
                        actor_id=client_account.id,
                        now=utcnow(),
                    )
        except TesseraError as exc:  # the appeal settled by the approval first: resolved
            if exc.slug != "appeal-resolved":
                errors.append(exc)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=act, args=(n,)) for n in range(2 * pairs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    wide.dispose()
    assert not errors, errors
    with db.read_session() as session:
        assert {a.status for a in session.scalars(select(Assignment))} == {
            AssignmentStatus.approved
        }
        assert {a.status.value for a in session.scalars(select(Appeal))} == {"overturned"}
        approvals = Counter(
            d.assignment_id
            for d in session.scalars(select(ReviewDecision))
            if d.new_status is AssignmentStatus.approved
        )
        assert approvals == dict.fromkeys(ids, 1)
