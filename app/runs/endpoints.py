"""HTTP for background runs: the person who started a run (or an admin) reads its progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.core.inputs import ParamText, PathId
from app.core.pagination import Page, PageParams, page_params
from app.core.security import CurrentPrincipal, ReadSession
from app.models.accounts import Role
from app.models.background import RunState
from app.runs import schemas, service

router = APIRouter(prefix="/v1", tags=["runs"])

Paging = Annotated[PageParams, Depends(page_params)]


@router.get("/runs", response_model=Page[schemas.RunOut])
def list_runs(
    principal: CurrentPrincipal,
    session: ReadSession,
    paging: Paging,
    kind: Annotated[ParamText | None, Query(max_length=64)] = None,
    state: RunState | None = None,
) -> Page[schemas.RunOut]:
    """Your own background runs (imports, exports, ...), oldest first."""
    runs, cursor = service.list_runs(session, principal.id, paging, kind=kind, state=state)
    return Page(items=[schemas.RunOut.model_validate(r) for r in runs], next_cursor=cursor)


@router.get("/runs/{run_id}", response_model=schemas.RunOut)
def get_run(run_id: PathId, principal: CurrentPrincipal, session: ReadSession) -> schemas.RunOut:
    """One run: state, progress counters, result or error. 404 unless it is yours (admins see
    every run)."""
    run = service.get_run_for(
        session, run_id, viewer_id=principal.id, is_admin=principal.role is Role.admin
    )
    return schemas.RunOut.model_validate(run)
