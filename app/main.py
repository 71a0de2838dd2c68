"""create_app(): routers, middleware, error handlers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import __version__
from app.accounts.endpoints import router as accounts_router
from app.core.body_limit import BodyLimitMiddleware
from app.core.db import Database
from app.core.errors import install_error_handlers
from app.core.headers import SecurityHeadersMiddleware, install_docs
from app.core.observability import Metrics, RequestContextMiddleware
from app.core.openapi import document_problems
from app.core.settings import Settings, load_settings
from app.health.background import BackgroundCollector
from app.health.endpoints import router as health_router
from app.jobs.endpoints import import_items
from app.jobs.endpoints import router as jobs_router
from app.quality.endpoints import router as quality_router
from app.quality.overviews.endpoints import router as overviews_router
from app.routing.endpoints import router as routing_router
from app.routing.store import Workplace
from app.routing.work import open_workplace
from app.runs.endpoints import router as runs_router
from app.webhooks.endpoints import events as webhook_events
from app.webhooks.endpoints import router as webhooks_router
from payouts.endpoints import router as money_router
from qualification_tests.endpoints import router as qualification_router

GC_YOUNG_THRESHOLD = 20_000  # Python's default is 700 allocations

DESCRIPTION = """Tessera is a crowdsourcing marketplace backend for data labeling.

Authenticate with `Authorization: Bearer <token>`. Every error is RFC 9457 problem+json."""


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """Build the service. Tests pass their own settings and database."""
    settings = settings or load_settings()
    db = database or Database(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Workplace]]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        # The hot path's database access (on PostgreSQL a pool bound to this event loop): it
        # reaches the requests served in this lifespan through their `request.state`.
        workplace = await open_workplace(settings, db)
        # Objects alive after start-up live for good: keep them out of the collector's scans,
        # and collect young objects less often (each request allocates thousands).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield {"workplace": workplace}
        finally:
            await workplace.close()
            if database is None:
                db.dispose()

    app = FastAPI(
        title="Tessera",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # install_docs: the same pages on local assets, not a CDN's
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.metrics = Metrics()
    app.state.metrics.registry.register(
        BackgroundCollector(db, in_process=settings.in_process_jobs)
    )

    install_error_handlers(app)
    _document_problems(app)
    install_docs(app)
    # Dataset uploads stream in under their own, larger limit (and check it themselves too).
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        upload_max_bytes=settings.max_upload_bytes,
        uploads=[import_items],
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: on every response, 500s too

    app.include_router(routing_router)  # first: the annotators' hot path, matched first
    app.include_router(health_router)
    app.include_router(accounts_router)
    app.include_router(jobs_router)
    app.include_router(qualification_router)
    app.include_router(quality_router)
    app.include_router(overviews_router)
    app.include_router(runs_router)
    app.include_router(webhooks_router)
    app.webhooks.include_router(webhook_events)  # the OpenAPI `webhooks` section
    app.include_router(money_router)
    return app


def _document_problems(app: FastAPI) -> None:
    """The OpenAPI document, generated once, every error in it documented as problem+json
    (`app.core.openapi`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(app, generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
