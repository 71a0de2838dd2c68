"""The randomized money race (issue 22, "must show"): many threads interleave submits,
approvals, rejections, appeals, overturns, the earnings poster, payout batches, failures and
retries over HTTP on PostgreSQL, seeded so a failure replays; then the audit finds nothing, the
trial balance balances, and nothing answered a 500."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import Database
from app.core.settings import Settings
from app.models import Appeal, AppealStatus, Assignment, AssignmentStatus, Payout, PayoutStatus
from payouts import earnings
from tests.jobs.factories import active_job
from tests.support import Account

pytestmark = [pytest.mark.commits, pytest.mark.postgresql]

SEED = 22
THREADS = 8
OPERATIONS = 18  # per thread
ANNOTATORS = 6


def _ids(db: Database, stmt: Any) -> list[int]:
    with db.read_session() as session:
        return list(session.scalars(stmt))


def test_randomized_money_race_leaves_books_the_audit_finds_right(
    client: TestClient,
    db: Database,
    settings: Settings,
    admin: Account,
    client_account: Account,
    make_account: Callable[..., Account],
) -> None:
    job_id = active_job(
        client, client_account, items=60, overlap={"min": 1}, rate=1_500_000, lease_seconds=600
    )
    crowd = [make_account("annotator") for _ in range(ANNOTATORS)]
    owner_of = {}
    wide = Database(settings.model_copy(update={"db_pool_size": THREADS + 4}))
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def call(method: str, url: str, who: Account, **kw: Any) -> Any:
        response = client.request(method, url, headers=who.headers, **kw)
        with lock:
            outcomes[f"{url.split('/')[-1]} {response.status_code}"] += 1
            if response.status_code >= 500:
                failures.append(f"{method} {url}: {response.text}")
        return response

    def work(rng: random.Random) -> None:
        who = rng.choice(crowd)
        claimed = call("POST", "/v1/assignments/next", who, json={"job_id": job_id})
        if claimed.status_code != 200:
            return
        [assignment] = claimed.json()["assignments"]
        with lock:
            owner_of[assignment["id"]] = who
        answers = [{"sentiment": "positive"} for _ in assignment["items"]]
        call("POST", f"/v1/assignments/{assignment['id']}/submit", who, json={"answers": answers})

    def review(rng: random.Random, verb: str, statuses: tuple[AssignmentStatus, ...]) -> None:
        ids = _ids(wide, select(Assignment.id).where(Assignment.status.in_(statuses)))
        if ids:
            body: dict[str, Any] = {"assignment_ids": rng.sample(ids, min(len(ids), 2))}
            if verb == "reject":
                body["reason"] = "mislabelled"
            call("POST", f"/v1/quality/jobs/{job_id}/{verb}", client_account, json=body)

    def appeal(rng: random.Random) -> None:
        ids = _ids(
            wide, select(Assignment.id).where(Assignment.status == AssignmentStatus.rejected)
        )
        if ids:
            picked = rng.choice(ids)
            with lock:
                who = owner_of.get(picked)
            if who is not None:
                body = {"assignment_id": picked, "kind": "rejection", "message": "see the guide"}
                call("POST", "/v1/annotator/appeals", who, json=body)

    def resolve(rng: random.Random) -> None:
        ids = _ids(wide, select(Appeal.id).where(Appeal.status == AppealStatus.open))
        if ids:
            outcome = rng.choice(["overturned", "overturned", "upheld"])
            body = {"outcome": outcome, "note": "checked against the guide"}
            call("POST", f"/v1/admin/appeals/{rng.choice(ids)}/resolve", admin, json=body)

    def post_earnings(_: random.Random) -> None:
        with wide.transaction() as session:
            earnings.post_submitted(session)

    def pay(rng: random.Random) -> None:
        call("POST", "/v1/admin/payouts/batches", admin)
        pending = _ids(wide, select(Payout.id).where(Payout.status == PayoutStatus.pending))
        if pending and rng.random() < 0.5:
            payout_id = rng.choice(pending)
            call("POST", f"/v1/admin/payouts/{payout_id}/fail", admin, json={"reason": "bounced"})
            call("POST", f"/v1/admin/payouts/{payout_id}/retry", admin)

    def retry(rng: random.Random) -> None:
        failed = _ids(wide, select(Payout.id).where(Payout.status == PayoutStatus.failed))
        if failed:
            call("POST", f"/v1/admin/payouts/{rng.choice(failed)}/retry", admin)

    moves: list[Callable[[random.Random], None]] = [
        work,
        work,
        work,
        lambda rng: review(rng, "approve", (AssignmentStatus.submitted, AssignmentStatus.rejected)),
        lambda rng: review(rng, "reject", (AssignmentStatus.submitted,)),
        appeal,
        resolve,
        post_earnings,
        pay,
        retry,
    ]

    def act(n: int) -> None:
        rng = random.Random(SEED * 1000 + n)
        start.wait()
        for _ in range(OPERATIONS):
            try:
                rng.choice(moves)(rng)
            except BaseException as exc:
                with lock:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=act, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    post_earnings(random.Random(0))  # what the scheduler would post next
    wide.dispose()

    assert failures == [], failures
    assert all(outcomes[f"{move} 200"] for move in ("submit", "approve", "reject")), outcomes
    audit = client.get("/v1/admin/ledger/audit", headers=admin.headers).json()
    assert audit["breaches"] == [], audit["breaches"]
    trial = client.get("/v1/admin/ledger/trial-balance", headers=admin.headers).json()
    assert trial["balanced"] is True, trial
