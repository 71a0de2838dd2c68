"""Every route of the app × every kind of caller, with the status each must get.

The routes come from `app.routes`, so a route added without a row in `MATRIX` fails
`test_every_route_has_a_row` (and its own case). Each case sends a real request — a body an
allowed caller would send, path ids naming rows of a world (tests/security/world.py) — as each
of `ROLES`: anonymous, another annotator, the annotator the rows are about, another client, the
client who owns them, and an admin. Each call is undone when it has answered (a savepoint rolled
back), so each row states what every caller gets from the same starting point, even after an
allowed call used a row up (cancelled the job, resolved the appeal, ...).

Reading a row: 401 no or bad token; 403 the wrong role (or, on public routes, a refusal for
everyone); 404 not yours (another client's job answers as if it did not exist); 2xx allowed.
A 409 or 404 for an allowed caller is a business answer about the world's state under the
embedded default's settings (e.g. no Stripe: `payouts_provider=manual`), noted beside the row.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from tests.core.test_every_route_needs_a_token import walk
from tests.harness import undone
from tests.jobs.factories import job_body, jsonl, reviews
from tests.qualification_tests.factories import qtest_body, sentiment_questions
from tests.security.world import PASSWORD, ROLES, World, build_world, world_settings

# fmt: off
MATRIX: dict[str, str] = {  # anonymous, other annotator, annotator, other client, client, admin
    "GET /docs":                                                         "200 200 200 200 200 200",
    # The docs' static assets: public files (the directory itself is no page).
    "GET /docs/assets":                                                  "404 404 404 404 404 404",
    "GET /healthz":                                                      "200 200 200 200 200 200",
    "GET /metrics":                                                      "401 403 403 403 403 200",
    "GET /openapi.json":                                                 "200 200 200 200 200 200",
    "GET /readyz":                                                       "200 200 200 200 200 200",
    "GET /redoc":                                                        "200 200 200 200 200 200",
    "GET /v1/admin/annotators/{annotator_id}/attempts":                  "401 403 403 403 403 200",
    "GET /v1/admin/annotators/{annotator_id}/profile":                   "401 403 403 403 403 200",
    "PUT /v1/admin/annotators/{annotator_id}/profile":                   "401 403 403 403 403 200",
    "GET /v1/admin/annotators/{annotator_id}/quality":                   "401 403 403 403 403 200",
    "POST /v1/admin/annotators/{annotator_id}/quality/refresh":          "401 403 403 403 403 200",
    "DELETE /v1/admin/annotators/{annotator_id}/reputation-override":    "401 403 403 403 403 204",
    "PUT /v1/admin/annotators/{annotator_id}/reputation-override":       "401 403 403 403 403 200",
    "GET /v1/admin/annotators/{annotator_id}/skills":                    "401 403 403 403 403 200",
    "POST /v1/admin/annotators/{annotator_id}/skills":                   "401 403 403 403 403 201",
    "GET /v1/admin/annotators":                                          "401 403 403 403 403 200",
    "GET /v1/admin/appeals":                                             "401 403 403 403 403 200",
    "POST /v1/admin/appeals/{appeal_id}/resolve":                        "401 403 403 403 403 200",
    "POST /v1/admin/clients/{client_id}/credits":                        "401 403 403 403 403 201",
    "GET /v1/admin/clients":                                             "401 403 403 403 403 200",
    "GET /v1/admin/invites":                                             "401 403 403 403 403 200",
    "POST /v1/admin/invites":                                            "401 403 403 403 403 201",
    "GET /v1/admin/ledger/accounts/{account_kind}/{owner_id}":           "401 403 403 403 403 200",
    "GET /v1/admin/ledger/trial-balance":                                "401 403 403 403 403 200",
    "GET /v1/admin/ledger/audit":                                        "401 403 403 403 403 200",
    "GET /v1/admin/payouts":                                             "401 403 403 403 403 200",
    "POST /v1/admin/payouts/batches":                                    "401 403 403 403 403 201",
    "GET /v1/admin/payouts/batches/preview":                             "401 403 403 403 403 200",
    "GET /v1/admin/payouts/export":                                      "401 403 403 403 403 200",
    "POST /v1/admin/payouts/{payout_id}/fail":                           "401 403 403 403 403 200",
    "POST /v1/admin/payouts/{payout_id}/hold":                           "401 403 403 403 403 200",
    "POST /v1/admin/payouts/{payout_id}/release":                        "401 403 403 403 403 200",
    "POST /v1/admin/payouts/{payout_id}/retry":                          "401 403 403 403 403 201",
    "POST /v1/admin/payouts/{payout_id}/settle":                         "401 403 403 403 403 200",
    "GET /v1/admin/quality/actions":                                     "401 403 403 403 403 200",
    "POST /v1/admin/quality/actions/{action_id}/confirm":                "401 403 403 403 403 200",
    "POST /v1/admin/quality/actions/{action_id}/reverse":                "401 403 403 403 403 200",
    "POST /v1/admin/quality/refresh":                                    "401 403 403 403 403 202",
    "POST /v1/admin/skill-grants/{grant_id}/revoke":                     "401 403 403 403 403 200",
    "POST /v1/admin/skills":                                             "401 403 403 403 403 201",
    "PATCH /v1/admin/skills/{slug}":                                     "401 403 403 403 403 200",
    "GET /v1/admin/users":                                               "401 403 403 403 403 200",
    "POST /v1/admin/users/{user_id}/reactivate":                         "401 403 403 403 403 200",
    "POST /v1/admin/users/{user_id}/suspend":                            "401 403 403 403 403 200",
    "GET /v1/annotator/appeals":                                         "401 200 200 403 403 403",
    "POST /v1/annotator/appeals":                                        "401 404 201 403 403 403",
    "GET /v1/annotator/attempts":                                        "401 200 200 403 403 403",
    "GET /v1/annotator/attempts/{attempt_id}":                           "401 404 200 403 403 403",
    "POST /v1/annotator/attempts/{attempt_id}/submit":                   "401 404 200 403 403 403",
    "GET /v1/annotator/jobs":                                            "401 200 200 403 403 403",
    "GET /v1/annotator/jobs/{job_id}/eligibility":                       "401 200 200 403 403 403",
    "GET /v1/annotator/qualification-tests":                             "401 200 200 403 403 403",
    "GET /v1/annotator/qualification-tests/{test_id}":                   "401 200 200 403 403 403",
    # 201 a new attempt, 200 the one in progress
    "POST /v1/annotator/qualification-tests/{test_id}/attempts":         "401 201 200 403 403 403",
    "GET /v1/annotator/quality":                                         "401 200 200 403 403 403",
    "GET /v1/annotator/quality/actions":                                 "401 200 200 403 403 403",
    "GET /v1/annotator/quality/decisions":                               "401 200 200 403 403 403",
    "GET /v1/annotator/skills":                                          "401 200 200 403 403 403",
    "GET /v1/annotator/work":                                            "401 200 200 403 403 403",
    "GET /v1/assignments":                                               "401 200 200 403 403 403",
    # the other annotator is banned from the job (403 not eligible)
    "GET /v1/assignments/{assignment_id}":                               "401 404 200 403 403 403",
    "POST /v1/assignments/next":                                         "401 403 200 403 403 403",
    "POST /v1/assignments/{assignment_id}/heartbeat":                    "401 404 200 403 403 403",
    "POST /v1/assignments/{assignment_id}/release":                      "401 404 200 403 403 403",
    "POST /v1/assignments/{assignment_id}/submit":                       "401 404 200 403 403 403",
    "POST /v1/auth/login":                                               "200 200 200 200 200 200",
    "POST /v1/auth/signup":                                              "201 201 201 201 201 201",
    "GET /v1/balance":                                                   "401 403 403 200 200 200",
    "GET /v1/earnings":                                                  "401 200 200 403 403 403",
    "GET /v1/earnings/statement":                                        "401 200 200 403 403 403",
    "PUT /v1/earnings/payout-threshold":                                 "401 200 200 403 403 403",
    "GET /v1/payout-destination":                                        "401 200 200 403 403 403",
    "PUT /v1/payout-destination":                                        "401 200 200 403 403 403",
    "GET /v1/fundings":                                                  "401 403 403 200 200 200",
    # 409: no Stripe under the manual payouts provider
    "POST /v1/fundings/checkout":                                        "401 403 403 409 409 409",
    "GET /v1/jobs":                                                      "401 403 403 200 200 200",
    "POST /v1/jobs":                                                     "401 403 403 201 201 201",
    "GET /v1/jobs/{job_id}":                                             "401 403 403 404 200 200",
    "PATCH /v1/jobs/{job_id}":                                           "401 403 403 404 200 200",
    "POST /v1/jobs/{job_id}/activate":                                   "401 403 403 404 200 200",
    "GET /v1/jobs/{job_id}/bans":                                        "401 403 403 404 200 200",
    "POST /v1/jobs/{job_id}/bans":                                       "401 403 403 404 201 201",
    "DELETE /v1/jobs/{job_id}/bans/{annotator_id}":                      "401 403 403 404 204 204",
    "POST /v1/jobs/{job_id}/cancel":                                     "401 403 403 404 200 200",
    "POST /v1/jobs/{job_id}/complete":                                   "401 403 403 404 200 200",
    "GET /v1/jobs/{job_id}/consensus":                                   "401 403 403 404 200 200",
    "POST /v1/jobs/{job_id}/consensus/refit":                            "401 403 403 404 202 202",
    "POST /v1/jobs/{job_id}/deposits":                                   "401 403 403 404 200 200",
    "GET /v1/jobs/{job_id}/export":                                      "401 403 403 404 200 200",
    "POST /v1/jobs/{job_id}/items":                                      "401 403 403 404 201 201",
    "GET /v1/jobs/{job_id}/label-studio-config":                         "401 403 403 404 200 200",
    "POST /v1/jobs/{job_id}/pause":                                      "401 403 403 404 200 200",
    "GET /v1/jobs/{job_id}/progress":                                    "401 403 403 404 200 200",
    "GET /v1/jobs/{job_id}/spend":                                       "401 403 403 404 200 200",
    "GET /v1/me":                                                        "401 200 200 200 200 200",
    "GET /v1/me/tokens":                                                 "401 200 200 200 200 200",
    "POST /v1/me/tokens":                                                "401 201 201 201 201 201",
    # the annotator's spare token: anyone else's answers 404
    "DELETE /v1/me/tokens/{token_id}":                                   "401 404 204 404 404 404",
    # no payout account connected yet
    "GET /v1/payout-account":                                            "401 404 404 403 403 403",
    # 409: no Stripe under the manual payouts provider
    "POST /v1/payout-account/onboarding":                                "401 409 409 403 403 403",
    "POST /v1/payout-account/refresh":                                   "401 409 409 403 403 403",
    "GET /v1/payouts":                                                   "401 200 200 403 403 403",
    "GET /v1/qualification-tests":                                       "401 403 403 200 200 200",
    "POST /v1/qualification-tests":                                      "401 403 403 201 201 201",
    "GET /v1/qualification-tests/{test_id}":                             "401 403 403 404 200 200",
    "PATCH /v1/qualification-tests/{test_id}":                           "401 403 403 404 200 200",
    "GET /v1/qualification-tests/{test_id}/attempts":                    "401 403 403 404 200 200",
    "GET /v1/qualification-tests/{test_id}/questions":                   "401 403 403 404 200 200",
    "POST /v1/qualification-tests/{test_id}/questions":                  "401 403 403 404 201 201",
    "DELETE /v1/qualification-tests/{test_id}/questions/{question_id}":  "401 403 403 404 200 200",
    "GET /v1/qualification-tests/{test_id}/stats":                       "401 403 403 404 200 200",
    "POST /v1/quality/jobs/{job_id}/approve":                            "401 403 403 404 200 200",
    "GET /v1/quality/jobs/{job_id}/appeals":                             "401 403 403 404 200 200",
    "GET /v1/quality/jobs/{job_id}/assignments":                         "401 403 403 404 200 200",
    "POST /v1/quality/jobs/{job_id}/reject":                             "401 403 403 404 200 200",
    "GET /v1/quality/jobs/{job_id}/report":                              "401 403 403 404 200 200",
    "GET /v1/quality/jobs/{job_id}/rules":                               "401 403 403 404 200 200",
    "PUT /v1/quality/jobs/{job_id}/rules":                               "401 403 403 404 200 200",
    "GET /v1/runs":                                                      "401 200 200 200 200 200",
    # the client's run: 404 to everyone else but admins
    "GET /v1/runs/{run_id}":                                             "401 404 404 404 200 200",
    "GET /v1/skills":                                                    "401 200 200 200 200 200",
    # public (Stripe signs it); 404 while the provider is not stripe
    "POST /v1/stripe/webhook":                                           "404 404 404 404 404 404",
    "GET /v1/webhooks/deliveries":                                       "401 403 403 200 200 200",
    "GET /v1/webhooks/deliveries/{delivery_id}":                         "401 403 403 404 200 200",
    # 409: the delivery is pending, not dead
    "POST /v1/webhooks/deliveries/{delivery_id}/replay":                 "401 403 403 404 409 409",
    "GET /v1/webhooks/endpoints":                                        "401 403 403 200 200 200",
    # an endpoint belongs to a client: admins may not create one
    "POST /v1/webhooks/endpoints":                                       "401 403 403 201 201 403",
    "DELETE /v1/webhooks/endpoints/{endpoint_id}":                       "401 403 403 404 204 204",
    "GET /v1/webhooks/endpoints/{endpoint_id}":                          "401 403 403 404 200 200",
    "PATCH /v1/webhooks/endpoints/{endpoint_id}":                        "401 403 403 404 200 200",
    "POST /v1/webhooks/endpoints/{endpoint_id}/replay-dead":             "401 403 403 404 202 202",
    "POST /v1/webhooks/endpoints/{endpoint_id}/rotate-secret":           "401 403 403 404 200 200",
    "POST /v1/webhooks/endpoints/{endpoint_id}/test":                    "401 403 403 404 202 202",
    "GET /v1/webhooks/event-types":                                      "401 403 403 200 200 200",
}
# fmt: on


def _routes() -> list[str]:
    app = create_app(Settings(database_url="sqlite://", secret_key="s" * 40, _env_file=None))
    return sorted(
        f"{method} {path}"
        for path, methods in walk(app.routes)
        for method in methods
        if method not in {"HEAD", "OPTIONS"}
    )


ROUTES = _routes()

#: Which id of the world a path parameter names, unless the route says otherwise.
PATH_IDS = {
    "job_id": "job_id",
    "assignment_id": "assignment_id",
    "token_id": "spare_token_id",
    "user_id": "annotator_id",
    "annotator_id": "annotator_id",
    "slug": "skill",
    "grant_id": "grant_id",
    "test_id": "test_id",
    "question_id": "question_id",
    "attempt_id": "attempt_id",
    "action_id": "action_id",
    "appeal_id": "appeal_id",
    "endpoint_id": "endpoint_id",
    "delivery_id": "delivery_id",
    "run_id": "run_id",
    "payout_id": "pending_payout_id",
    "client_id": "client_id",
    "owner_id": "client_id",
}
PATH_OVERRIDES: dict[str, dict[str, str]] = {
    "DELETE /v1/jobs/{job_id}/bans/{annotator_id}": {"annotator_id": "other_annotator_id"},
    "DELETE /v1/admin/annotators/{annotator_id}/reputation-override": {
        "annotator_id": "other_annotator_id"
    },
    "POST /v1/jobs/{job_id}/activate": {"job_id": "draft_job_id"},
    "POST /v1/admin/payouts/{payout_id}/release": {"payout_id": "held_payout_id"},
    "POST /v1/admin/payouts/{payout_id}/retry": {"payout_id": "failed_payout_id"},
}
LITERAL_PATH = {"account_kind": "client_available"}

ANSWER = {"sentiment": "positive"}
Body = Callable[[World], dict[str, Any]]

#: What an allowed caller sends (as keyword arguments of `TestClient.request`).
BODIES: dict[str, Body] = {
    "POST /v1/assignments/next": lambda w: {"json": {"job_id": w["job_id"]}},
    "POST /v1/assignments/{assignment_id}/release": lambda w: {"json": {}},
    "POST /v1/assignments/{assignment_id}/submit": lambda w: {
        "json": {"answers": [ANSWER] * w["assignment_items"]}
    },
    "POST /v1/auth/signup": lambda w: {
        "json": {
            "email": f"new-{uuid.uuid4().hex[:10]}@example.com",
            "password": PASSWORD,
            "display_name": "New",
            "role": "annotator",
        }
    },
    "POST /v1/auth/login": lambda w: {
        "json": {"email": w.accounts["annotator"].user.email, "password": PASSWORD}
    },
    "POST /v1/me/tokens": lambda w: {"json": {"name": "matrix"}},
    "POST /v1/admin/users/{user_id}/suspend": lambda w: {"json": {"reason": "test"}},
    "POST /v1/admin/invites": lambda w: {"json": {"role": "annotator"}},
    "POST /v1/jobs": lambda w: {"json": job_body()},
    "PATCH /v1/jobs/{job_id}": lambda w: {"json": {"instructions": "Pick one."}},
    "POST /v1/jobs/{job_id}/bans": lambda w: {
        "json": {"annotator_id": w["annotator_id"], "reason": "test"}
    },
    "POST /v1/jobs/{job_id}/items": lambda w: {
        "content": jsonl(reviews(2, start=100)),
        "headers": {"Content-Type": "application/x-ndjson"},
    },
    "POST /v1/admin/skills": lambda w: {
        "json": {"slug": f"skill-{uuid.uuid4().hex[:8]}", "name": "Skill"}
    },
    "PATCH /v1/admin/skills/{slug}": lambda w: {"json": {"name": "Renamed"}},
    "POST /v1/admin/annotators/{annotator_id}/skills": lambda w: {
        "json": {"skill": w["skill"], "level": 1, "reason": "test"}
    },
    "POST /v1/admin/skill-grants/{grant_id}/revoke": lambda w: {"json": {"reason": "test"}},
    "PUT /v1/admin/annotators/{annotator_id}/profile": lambda w: {"json": {"reputation": 0.9}},
    "POST /v1/qualification-tests": lambda w: {"json": qtest_body(w["skill"], questions=2)},
    "PATCH /v1/qualification-tests/{test_id}": lambda w: {"json": {"title": "Renamed"}},
    "POST /v1/qualification-tests/{test_id}/questions": lambda w: {
        "json": {"questions": sentiment_questions(1)}
    },
    "POST /v1/annotator/attempts/{attempt_id}/submit": lambda w: {
        "json": {"answers": [{"question_id": q, "answer": ANSWER} for q in w["attempt_questions"]]}
    },
    "POST /v1/quality/jobs/{job_id}/approve": lambda w: {
        "json": {"assignment_ids": [w["submitted_id"]]}
    },
    "POST /v1/quality/jobs/{job_id}/reject": lambda w: {
        "json": {"assignment_ids": [w["submitted_id"]], "reason": "off topic"}
    },
    "PUT /v1/quality/jobs/{job_id}/rules": lambda w: {"json": {"speed_floor_seconds": 5}},
    "PUT /v1/earnings/payout-threshold": lambda w: {"json": {"minimum_micros": 5_000_000}},
    "PUT /v1/payout-destination": lambda w: {
        "json": {"method": "bank_transfer", "details": "DE89 3704 0044 0532 0130 00"}
    },
    "POST /v1/annotator/appeals": lambda w: {
        "json": {"assignment_id": w["rejected_id"], "kind": "rejection", "message": "please"}
    },
    "POST /v1/admin/quality/actions/{action_id}/confirm": lambda w: {"json": {"note": "test"}},
    "POST /v1/admin/quality/actions/{action_id}/reverse": lambda w: {"json": {"note": "test"}},
    "POST /v1/admin/appeals/{appeal_id}/resolve": lambda w: {
        "json": {"outcome": "upheld", "note": "test"}
    },
    "PUT /v1/admin/annotators/{annotator_id}/reputation-override": lambda w: {
        "json": {"reputation": 0.9, "reason": "test"}
    },
    "POST /v1/webhooks/endpoints": lambda w: {
        "json": {"url": "http://127.0.0.1:9/other", "event_types": ["job.completed"]}
    },
    "PATCH /v1/webhooks/endpoints/{endpoint_id}": lambda w: {"json": {"description": "renamed"}},
    "POST /v1/webhooks/endpoints/{endpoint_id}/rotate-secret": lambda w: {"json": {}},
    "POST /v1/fundings/checkout": lambda w: {
        "json": {
            "amount_micros": 10_000_000,
            "success_url": "https://example.com/paid",
            "cancel_url": "https://example.com/cancelled",
        }
    },
    "POST /v1/jobs/{job_id}/deposits": lambda w: {"json": {"amount_micros": 1_000_000}},
    "POST /v1/payout-account/onboarding": lambda w: {
        "json": {"return_url": "https://example.com/r", "refresh_url": "https://example.com/f"}
    },
    "POST /v1/admin/clients/{client_id}/credits": lambda w: {
        "json": {"amount_micros": 1_000_000, "reason": "test"}
    },
    "POST /v1/admin/payouts/{payout_id}/hold": lambda w: {"json": {"reason": "test"}},
    "POST /v1/admin/payouts/{payout_id}/settle": lambda w: {"json": {"reference": "bank-1"}},
    "POST /v1/admin/payouts/{payout_id}/fail": lambda w: {"json": {"reason": "test"}},
    "POST /v1/stripe/webhook": lambda w: {"content": b"{}"},
}


@pytest.fixture(scope="module")
def world(http: TestClient, module_db: Database, settings: Settings) -> World:
    return build_world(http, module_db, world_settings(settings))


def request_for(route: str, world: World) -> dict[str, Any]:
    method, template = route.split(" ", 1)
    names = {**PATH_IDS, **PATH_OVERRIDES.get(route, {})}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(LITERAL_PATH.get(name) or world[names[name]])

    path = re.sub(r"\{([^}]+)\}", value, template)
    return {"method": method, "url": path, **(BODIES[route](world) if route in BODIES else {})}


def test_every_route_has_a_row() -> None:
    assert sorted(set(ROUTES) - set(MATRIX)) == [], "add a row to MATRIX for each new route"
    assert sorted(set(MATRIX) - set(ROUTES)) == [], "rows of routes that no longer exist"


@pytest.mark.parametrize("route", ROUTES)
def test_each_caller_gets_the_status_of_its_role(
    route: str, world: World, http: TestClient, module_db: Database
) -> None:
    got: list[int] = []
    for role in ROLES:
        kwargs = request_for(route, world)
        headers = {**kwargs.pop("headers", {}), **world.headers(role)}
        with undone(module_db):
            response = http.request(headers=headers, **kwargs)
        got.append(response.status_code)
    assert route in MATRIX, f"no row for {route}: it answered {tuple(got)}"
    answered = " ".join(map(str, got))
    assert answered == MATRIX[route], f"{route}: expected {MATRIX[route]}, got {answered}"
