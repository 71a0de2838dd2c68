"""A small marketplace with one of everything a route can name, for the security tests.

The role matrix and the schemathesis battery need real rows behind every path parameter — a job
owned by a client, an assignment held by an annotator, an appeal, a quality action, a payout in
each state an admin can act on — so that an allowed caller reaches the business logic (2xx) and
a refused one is refused for who they are, not because the row is missing. Everything is made
through the API with the suite's factories, except what only a background job or the ledger
makes (a rule's flag, an annotator's balance), which is made by the same service functions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.accounts import service as accounts
from app.core import clock
from app.core.db import Database
from app.core.settings import Settings
from app.models import Role, WebhookDelivery
from app.models.money import EntryKind
from app.quality import enforcement
from payouts import funding, ledger
from tests.jobs.factories import active_job, draft_job
from tests.qualification_tests.factories import make_skill, qtest_body
from tests.quality.factories import do_task
from tests.support import Account

#: The six callers of the role matrix, in the order they are tried: those who must be refused
#: first, so that a refusal is checked before an allowed call changes the world.
ROLES = ("anonymous", "other_annotator", "annotator", "other_client", "client", "admin")

PASSWORD = "correct horse battery staple"
PAYOUT_TOPUP_MICROS = 5_000_000  # above the 1.00 payout minimum


@dataclass
class World:
    """Accounts by role (`anonymous` has none) and the ids of what they own.

    `annotator` holds `assignment_id` (active), `submitted_id` (waiting for review),
    `rejected_id` (rejected, not appealed), `appeal_id` (their appeal of another rejection),
    `attempt_id` (a qualification attempt in progress), `grant_id`, `spare_token_id`, and is
    the subject of `action_id` (an open fast-submit flag) and of the three payouts. `client`
    owns `job_id` (active), `draft_job_id`, `test_id` (with `question_id`), `endpoint_id`,
    `delivery_id` and `run_id`, and has banned `other_annotator` from the job, whose
    reputation an admin has overridden."""

    accounts: dict[str, Account]
    ids: dict[str, Any] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        return self.accounts[role].headers if role in self.accounts else {}

    def __getitem__(self, name: str) -> Any:
        return self.ids[name]


def world_settings(settings: Settings) -> Settings:
    """The suite's settings, with webhook receivers on 127.0.0.1 allowed (nothing listens on
    the port the world's endpoint names: deliveries stay pending)."""
    return settings.model_copy(update={"webhook_allowed_networks": ["127.0.0.1/32"]})


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json() if response.content else None


def new_account(db: Database, role: Role, *, password: str | None = None) -> Account:
    """A user with an API token (clients with funds), as the suite's `make_account` makes."""
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
    with db.transaction() as session:
        user = accounts.create_user(
            session, email=email, display_name=email.split("@")[0], role=role, password=password
        )
        issued = accounts.issue_token(session, user, "test")
        if role is Role.client:
            funding.credit_manually(session, user.id, 10**12, actor_id=None, reason="test")
    return Account(user=user, token=issued.secret)


def build_world(http: TestClient, db: Database, settings: Settings) -> World:
    """A new world beside any others in the database (every name in it is new)."""
    world = World(
        accounts={
            "annotator": new_account(db, Role.annotator, password=PASSWORD),
            "other_annotator": new_account(db, Role.annotator),
            "client": new_account(db, Role.client),
            "other_client": new_account(db, Role.client),
            "admin": new_account(db, Role.admin),
        }
    )
    acc = world.accounts
    annotator, owner, admin = acc["annotator"], acc["client"], acc["admin"]
    ids = world.ids
    ids["annotator_id"] = annotator.id
    ids["other_annotator_id"] = acc["other_annotator"].id
    ids["client_id"] = owner.id

    # Skills and a qualification test of the client's, with an attempt in progress.
    ids["skill"] = f"sentiment-{owner.id}"
    make_skill(http, admin, ids["skill"])
    grant = http.post(
        f"/v1/admin/annotators/{annotator.id}/skills",
        json={"skill": ids["skill"], "level": 1, "reason": "test"},
        headers=admin.headers,
    )
    ids["grant_id"] = _ok(grant, 201)["id"]
    test = _ok(
        http.post(
            "/v1/qualification-tests",
            json=qtest_body(ids["skill"], questions=2),
            headers=owner.headers,
        ),
        201,
    )
    ids["test_id"] = test["id"]
    questions = _ok(
        http.get(f"/v1/qualification-tests/{test['id']}/questions", headers=owner.headers)
    )
    ids["question_id"] = questions[0]["id"]
    started = http.post(
        f"/v1/annotator/qualification-tests/{test['id']}/attempts", headers=annotator.headers
    )
    attempt = _ok(started, 201)
    ids["attempt_id"] = attempt["id"]
    ids["attempt_questions"] = [q["question_id"] for q in attempt["questions"]]

    # An active job of the client's, with a speed floor so a fast submit is flagged.
    job_id = active_job(http, owner, items=8, overlap={"min": 1})
    _ok(
        http.put(
            f"/v1/quality/jobs/{job_id}/rules",
            json={"speed_floor_seconds": 10},
            headers=owner.headers,
        )
    )
    ids["job_id"] = job_id
    draft_id = draft_job(http, owner, items=2, overlap={"min": 1})
    ids["draft_job_id"] = draft_id
    _ok(
        http.post(
            f"/v1/jobs/{job_id}/bans",
            json={"annotator_id": acc["other_annotator"].id, "reason": "test"},
            headers=owner.headers,
        ),
        201,
    )

    # The annotator's work: flagged, appealed, rejected, waiting for review, and in progress.
    flagged, appealed, rejected, submitted = (
        do_task(http, annotator, job_id, seconds=seconds)["id"]  # type: ignore[index]
        for seconds in (2, 30, 30, 30)
    )
    with db.transaction() as session:
        [flag] = enforcement.check_submit(session, settings, flagged, clock.utcnow())
    ids["action_id"] = flag.id
    _ok(
        http.post(
            f"/v1/quality/jobs/{job_id}/reject",
            json={"assignment_ids": [appealed, rejected], "reason": "off topic"},
            headers=owner.headers,
        )
    )
    appeal = http.post(
        "/v1/annotator/appeals",
        json={"assignment_id": appealed, "kind": "rejection", "message": "it was on topic"},
        headers=annotator.headers,
    )
    ids["appeal_id"] = _ok(appeal, 201)["id"]
    ids["rejected_id"], ids["submitted_id"] = rejected, submitted
    claimed = _ok(
        http.post("/v1/assignments/next", json={"job_id": job_id}, headers=annotator.headers)
    )
    [active] = claimed["assignments"]
    ids["assignment_id"] = active["id"]
    ids["assignment_items"] = len(active["items"])

    override = {"reputation": 0.5, "reason": "test"}
    path = f"/v1/admin/annotators/{acc['other_annotator'].id}/reputation-override"
    _ok(http.put(path, json=override, headers=admin.headers))

    # A background run, a webhook endpoint with a delivery, and a spare token.
    refit = _ok(http.post(f"/v1/jobs/{job_id}/consensus/refit", headers=owner.headers), 202)
    ids["run_id"] = refit["run_id"]
    endpoint = http.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["job.completed"]},
        headers=owner.headers,
    )
    ids["endpoint_id"] = _ok(endpoint, 201)["id"]
    _ok(http.post(f"/v1/webhooks/endpoints/{ids['endpoint_id']}/test", headers=owner.headers), 202)
    with db.read_session() as session:
        ids["delivery_id"] = session.scalars(
            select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == ids["endpoint_id"])
        ).first()
    spare = _ok(http.post("/v1/me/tokens", json={"name": "spare"}, headers=annotator.headers), 201)
    ids["spare_token_id"] = spare["id"]

    # Payouts to the annotator in each state an admin acts on: failed, held, pending.
    for name, then in (("failed", "fail"), ("held", "hold"), ("pending", None)):
        _top_up(db, annotator.id, settings.currency)
        batch = _ok(http.post("/v1/admin/payouts/batches", headers=admin.headers), 201)
        [payout] = [p for p in batch["payouts"] if p["annotator_id"] == annotator.id]
        if then is not None:
            body = {"reason": "test"}
            _ok(
                http.post(
                    f"/v1/admin/payouts/{payout['id']}/{then}", json=body, headers=admin.headers
                )
            )
        ids[f"{name}_payout_id"] = payout["id"]
    _top_up(db, annotator.id, settings.currency)  # so that a retry of the failed one can pay
    return world


def _top_up(db: Database, annotator_id: int, currency: str) -> None:
    """Money in the annotator's available balance, as approved work would leave it."""
    with db.transaction() as session:
        ledger.post_entry(
            session,
            ledger.transfer(
                f"test:world:{annotator_id}:{clock.utcnow().timestamp()}",
                EntryKind.topup,
                ledger.external(currency),
                [(ledger.annotator_available(annotator_id, currency), PAYOUT_TOPUP_MICROS)],
                "test",
            ),
            clock.utcnow(),
        )
