"""Schemathesis against the app's own OpenAPI document, as an admin, a client and an annotator.

Every operation gets generated requests (valid and invalid ones, a bounded number each, the same
every run) with a real token, over a world of real rows (tests/security/world.py) so that small
generated ids often name something that exists. Each response must:
- not be a server error (5xx),
- conform to the response schema documented for its status,
- have a status code the operation documents.

Generated requests change the world (a token revoked, an account suspended, a job cancelled);
before each operation the caller gets a fresh token and every account of the world is active
again, so one operation's damage does not turn the next one's answers into 401s.

Runs when TESSERA_SCHEMATHESIS=1, as `make test` (so CI) sets it; a bare `pytest` skips it.
TESSERA_SCHEMATHESIS_EXAMPLES sets the examples per operation (default 4, which keeps CI under
its 30 minutes; 8 and more pass too).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from app.accounts import service as accounts
from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from app.models import User, UserStatus
from tests.security.world import World, build_world, world_settings

ENABLED = os.environ.get("TESSERA_SCHEMATHESIS", "") == "1"
EXAMPLES = int(os.environ.get("TESSERA_SCHEMATHESIS_EXAMPLES", "4"))
CALLERS = ("admin", "client", "annotator")
ALL_CHECKS = {
    "server": not_a_server_error,
    "schema": response_schema_conformance,
    "status": status_code_conformance,
}
#: TESSERA_SCHEMATHESIS_CHECKS=server runs only the 5xx check (to see the server errors that
#: an earlier undocumented status would hide: a case stops at its first failure).
CHECKS = [
    ALL_CHECKS[name]
    for name in os.environ.get("TESSERA_SCHEMATHESIS_CHECKS", "server,schema,status").split(",")
]

# Once, on PostgreSQL (the production database): what it checks is the HTTP surface, the same
# on both stores.
pytestmark = [
    pytest.mark.skipif(not ENABLED, reason="set TESSERA_SCHEMATHESIS=1 (`make test` does)"),
    pytest.mark.postgresql,
]


def _openapi() -> dict[str, Any]:
    app = create_app(Settings(database_url="sqlite://", secret_key="s" * 40, _env_file=None))
    return app.openapi()


schema = schemathesis.openapi.from_dict(_openapi())
schema.config.generation.update(max_examples=EXAMPLES, deterministic=True)


@pytest.fixture(scope="module")
def world(http: TestClient, module_db: Database, settings: Settings) -> World:
    return build_world(http, module_db, world_settings(settings))


@pytest.fixture
def caller(request: pytest.FixtureRequest, world: World, module_db: Database) -> dict[str, str]:
    """Authorization of `request.param` with a fresh token, every account active again."""
    with module_db.transaction() as session:
        for account in world.accounts.values():
            user = session.get_one(User, account.id)
            if user.status is not UserStatus.active:
                accounts.reactivate_user(session, user_id=user.id)
        user = session.get_one(User, world.accounts[request.param].id)
        secret = accounts.issue_token(session, user, "schemathesis").secret
    return {"Authorization": f"Bearer {secret}"}


def _send(http: TestClient, case: Any, headers: dict[str, str]) -> Any:
    """The case through the app's own TestClient (its lifespan is running): schemathesis'
    request keyword arguments, translated to httpx's."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    data = kwargs.pop("data", None)
    if isinstance(data, bytes | str):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    if not kwargs.get("cookies"):
        kwargs.pop("cookies", None)
    kwargs.pop("timeout", None)
    kwargs.pop("verify", None)
    kwargs.pop("allow_redirects", None)
    # Header values as the bytes HTTP carries: schemathesis draws any latin-1 text, which
    # httpx would refuse to encode as ASCII before the request is even sent.
    kwargs["headers"] = {
        name: value.encode("latin-1") if isinstance(value, str) else value
        for name, value in (kwargs.get("headers") or {}).items()
    }
    return http.request(follow_redirects=False, **kwargs), kwargs


@pytest.mark.parametrize("caller", CALLERS, indirect=True)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_responses_conform_to_the_openapi_document(
    case: Any, caller: dict[str, str], http: TestClient
) -> None:
    response, sent = _send(http, case, caller)
    try:
        case.validate_response(response, checks=CHECKS, headers=caller, transport_kwargs=sent)
    except FailureGroup as failures:
        _record(case, response, failures)
        raise


def _record(case: Any, response: Any, failures: FailureGroup) -> None:
    """With TESSERA_SCHEMATHESIS_FINDINGS=path, append each failure as a JSON line (the
    findings list is grouped from these)."""
    path = os.environ.get("TESSERA_SCHEMATHESIS_FINDINGS")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for failure in failures.exceptions:
            line = {
                "operation": f"{case.method} {case.path}",
                "role": _current_role(),
                "check": getattr(failure, "title", type(failure).__name__),
                "status": response.status_code,
                "request": f"{case.method} {case.formatted_path}",
                "query": case.query,
                "body": repr(case.body)[:300],
                "response": response.text[:300],
            }
            out.write(json.dumps(line, default=str) + "\n")


def _current_role() -> str:
    test = os.environ.get("PYTEST_CURRENT_TEST", "")
    return next((role for role in CALLERS if f"[{role}]" in test), "?")
