"""`/healthz` (process up), `/readyz` (database reachable, schema at head, background work
flowing), `/metrics`.

`/readyz` answers anyone (load balancers send no token) but tells only whether the service is
ready; which check failed, the schema revisions and the background figures are for the metrics
token or an admin, like `/metrics`: they describe the deployment, not the caller's data.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.core.db import Database
from app.core.errors import (
    Forbidden,
    ServiceUnavailable,
    TesseraError,
    Unauthorized,
    problem_responses,
    raises,
)
from app.core.security import bearer_secret, current_principal, get_database
from app.core.settings import Settings
from app.health.background import background_status
from app.models.accounts import Role
from migrations.schema import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (no dependencies checked)."""
    return {"status": "ok"}


NOT_READY = "The service is not ready"


@router.get(
    "/readyz",
    responses=problem_responses(
        (ServiceUnavailable, "not ready (which check failed: with a token)")
    ),
)
def readyz(request: Request, db: Annotated[Database, Depends(get_database)]) -> dict[str, Any]:
    """Ready to serve: the database answers, its schema is at the latest migration and, with a
    broker, at least one worker has reported in recently. Without a token only the verdict;
    with the metrics token or an admin token also each check: outbox lag, dead jobs and queue
    depth. Without a broker jobs run inside `tessera serve`: no external workers needed."""
    try:
        checks = _readiness(request, db)
    except ServiceUnavailable:
        if _sees_details(request, db):
            raise
        raise ServiceUnavailable(NOT_READY) from None
    if _sees_details(request, db):
        return {"status": "ready", "checks": checks}
    return {"status": "ready"}


def _readiness(request: Request, db: Database) -> dict[str, Any]:
    """Every check, or `ServiceUnavailable` naming the one that failed."""
    try:
        # A read session: on SQLite a plain connection would begin IMMEDIATE and wait behind
        # any writer for the write lock it does not need.
        with db.read_session() as session:
            connection = session.connection()
            connection.execute(text("SELECT 1"))
            current = current_revision(connection)
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            "The database is unreachable", checks={"database": f"error: {type(exc).__name__}"}
        ) from None
    head = head_revision()
    if current != head:
        raise ServiceUnavailable(
            "The database schema is not at the latest migration; run `tessera migrate`",
            checks={"database": "ok", "schema": {"current": current, "head": head}},
        )
    settings: Settings = request.app.state.settings
    with db.read_session() as session:
        background = background_status(session, in_process=settings.in_process_jobs)
    checks = {
        "database": "ok",
        "schema": {"current": current, "head": head},
        "background": background.as_check(),
    }
    if not settings.in_process_jobs and background.live_workers == 0:
        raise ServiceUnavailable(
            "No background worker has reported in recently; start `tessera worker`",
            checks=checks,
        )
    return checks


def _sees_details(request: Request, db: Database) -> bool:
    """Whether the caller may see what `/metrics` shows (the metrics token or an admin)."""
    if bearer_secret(request) is None:
        return False
    try:
        _metrics_access(request, db)
    except (TesseraError, SQLAlchemyError):
        return False
    return True


@raises(
    (Unauthorized, "neither the metrics token nor a valid API token"),
    (Forbidden, "an API token that is not an admin's"),
)
def _metrics_access(request: Request, db: Annotated[Database, Depends(get_database)]) -> None:
    settings: Settings = request.app.state.settings
    secret = bearer_secret(request)
    if secret is None:
        raise Unauthorized("Metrics need the metrics token or an admin API token")
    if settings.metrics_token is not None and hmac.compare_digest(
        secret.encode(), settings.metrics_token.get_secret_value().encode()
    ):
        return
    with db.read_session() as session:
        principal = current_principal(request, session, db)
    if principal.role is not Role.admin:
        raise Forbidden("Metrics are for administrators")


@router.get("/metrics", dependencies=[Depends(_metrics_access)], response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics (bearer: `TESSERA_METRICS_TOKEN` or an admin token)."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
