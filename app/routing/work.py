"""The hot path's requests: the database access chosen once at start-up (`open_workplace`, from
the app's lifespan) and the dependency that authenticates each caller and lends it a runner.
Endpoints run `flow` operations through `HotWork.runner` without knowing the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.core.db import Database
from app.core.security import Caller, authenticate_caller
from app.core.settings import Settings
from app.models.accounts import Role
from app.routing.postgresql import PgWorkplace
from app.routing.sqlite import SqliteWorkplace
from app.routing.store import Runner, Workplace


async def open_workplace(settings: Settings, db: Database) -> Workplace:
    """The hot path's database access for this process (PostgreSQL: an async pool bound to the
    running event loop, so each app opens its own in its lifespan)."""
    if settings.is_sqlite:
        return SqliteWorkplace(db)
    return await PgWorkplace.open(settings, db)


@dataclass(frozen=True)
class HotWork:
    """What an endpoint of the hot path works with: the authenticated caller and a runner."""

    caller: Caller
    runner: Runner


def hot_work(*roles: Role) -> Callable[[Request], AsyncIterator[HotWork]]:
    """A dependency authenticating the caller of a hot-path endpoint (401/403 as everywhere,
    before any 422 for the body) on the runner it then lends to the endpoint."""

    async def work(request: Request) -> AsyncIterator[HotWork]:
        workplace: Workplace = request.state.workplace
        async with workplace.runner() as runner:
            yield HotWork(await authenticate_caller(request, runner.read_token, *roles), runner)

    return work


AnnotatorWork = Annotated[HotWork, Depends(hot_work(Role.annotator))]
