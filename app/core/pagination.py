"""Keyset pagination: `?limit=&after=<id>`; responses carry `next_cursor` (the last id) or null."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from app.core.inputs import Cursor

T = TypeVar("T")
RowT = TypeVar("RowT")
SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])

MAX_PAGE = 500


class PageParams(BaseModel):
    limit: int = 50
    after: int | None = None


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")] = 50,
    after: Cursor = None,
) -> PageParams:
    return PageParams(limit=limit, after=after)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: int | None


def paginate(stmt: SelectT, id_column: InstrumentedAttribute[int], params: PageParams) -> SelectT:
    """Order by id and apply the cursor; fetch one extra row to know whether more follow."""
    if params.after is not None:
        stmt = stmt.where(id_column > params.after)
    return stmt.order_by(id_column).limit(params.limit + 1)


def page_of(
    rows: Sequence[RowT], params: PageParams, ids: Sequence[int]
) -> tuple[list[RowT], int | None]:
    """Cut the extra row off and compute the next cursor."""
    if len(rows) > params.limit:
        return list(rows[: params.limit]), ids[params.limit - 1]
    return list(rows), None
