"""Types for everything a request carries, so bad input is refused at the edge, never in SQL.

Each kind of value a client sends has one type here, used by every route and request model:

- `PathId`: an id in the path. Ids are BIGINT (64-bit) on PostgreSQL and SQLite alike, so an id
  outside 1..2^63-1 cannot exist: it is a 404, the same problem as an unknown id (nothing learnt),
  instead of an overflow in the database (a 500 on PostgreSQL).
- `Cursor`, `Int32` and `Int64`: integers in the query or the body, bounded by the
  column they end up in (INTEGER or BIGINT); out of range is a 422 with a pointer.
- `Timestamp`: a datetime that says its time zone (`Z`, `+02:00`); a naive one would be guessed
  at, or fail deep in the database layer, so it is a 422.
- `ParamText`: a string in the path or the query that both databases can store (no NUL, no
  unpaired surrogate: `app.core.storable`).
- `RequestBody`: the base of every request model. It forbids unknown fields and checks the whole
  body as sent (every string and key, free-form JSON such as answers and payloads included, every
  number, and the nesting depth) with `first_unstorable`, so both databases refuse the same
  input with a 422 that points at the bad value. Its integer fields take JSON integers only
  (`json_integers_only`): pydantic's lax mode would read `"5"` as 5, `true` as 1 and `5.0` as 5,
  so `"amount_micros": true` once credited one micro. Every `int` in a request model is checked,
  in lists, dict values, optionals and nested models too, with no per-field marking to forget.

`tests/core/test_request_edge.py` walks the app's routes and fails when a parameter or a request
model does not use these types, so new routes are covered too.
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from typing import Annotated, Any, Union

from annotated_types import Interval
from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.core.errors import NotFound
from app.core.storable import INT64_MAX, INT64_MIN, first_unstorable, text_problem

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

#: An integer stored in an INTEGER column.
Int32 = Annotated[int, Interval(ge=INT32_MIN, le=INT32_MAX)]
#: An integer stored in a BIGINT column (ids in bodies and query filters, micro-units).
Int64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]


def _id_check(lowest: int) -> AfterValidator:
    def possible_id(value: int) -> int:
        if not lowest <= value <= INT64_MAX:
            # Raised as is (pydantic passes on what is not a ValueError): the same 404 an
            # unknown id gets from its service.
            raise NotFound(f"No such resource: ids are whole numbers from {lowest} to {INT64_MAX}")
        return value

    return AfterValidator(possible_id)


POSSIBLE_ID = _id_check(1)
POSSIBLE_OWNER_ID = _id_check(0)
#: The checks the path id types carry (the route walk wants one on every integer in a path).
PATH_ID_CHECKS = (POSSIBLE_ID, POSSIBLE_OWNER_ID)

#: The id of a row in the path: 1 to 2^63-1, any other number is a 404.
PathId = Annotated[
    int,
    POSSIBLE_ID,
    Path(
        description="An id (1 to 2^63-1; any other number is a 404, like an unknown id)",
        json_schema_extra={"minimum": 1, "maximum": INT64_MAX},
    ),
]
#: The owner of a ledger account in the path: a user's id, or 0 for the platform's accounts.
LedgerOwnerId = Annotated[
    int,
    POSSIBLE_OWNER_ID,
    Path(
        description="A user's id, or 0 for the platform's accounts",
        json_schema_extra={"minimum": 0, "maximum": INT64_MAX},
    ),
]

#: The keyset cursor of a paged list (`next_cursor` of the previous page).
Cursor = Annotated[
    int | None,
    Query(ge=0, le=INT64_MAX, description="Cursor: `next_cursor` of the previous page"),
]


def _needs_time_zone(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("timezone_aware", "timestamp needs a time zone, e.g. Z or +02:00")
    return value


#: The check every `Timestamp` carries (the route walk looks for it).
AWARE = AfterValidator(_needs_time_zone)

#: A point in time with its time zone: `2030-01-31T12:00:00Z`; a naive one is a 422.
Timestamp = Annotated[datetime, AWARE]


def _storable_text(value: str) -> str:
    reason = text_problem(value)
    if reason:
        raise PydanticCustomError("unstorable_text", "{reason}", {"reason": reason})
    return value


#: The check every `ParamText` carries (the route walk looks for it).
STORABLE = AfterValidator(_storable_text)

#: A string in the path or the query, checked as body strings are (no NUL, no lone surrogate).
ParamText = Annotated[str, STORABLE]


def _located(data: Any, pointer: str) -> tuple[tuple[str | int, ...], Any]:
    """The pydantic location of an RFC 6901 pointer into `data` (`/answers/0/x` becomes
    `("answers", 0, "x")`), and the value there."""
    at: list[str | int] = []
    value = data
    for token in pointer.split("/")[1:]:
        key: str | int = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, list):
            key = int(key)
        at.append(key)
        value = value[key]
    return tuple(at), value


class RequestBody(BaseModel):
    """Base of every request model: unknown fields are refused, and the body as sent is checked
    for what cannot be stored (see the module docstring) before any field is validated."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        found = first_unstorable(data)
        if found is None:
            return data
        at, bad = _located(data, found.pointer)
        error = PydanticCustomError("unstorable", "{reason}", {"reason": found.reason})
        raise ValidationError.from_exception_data(
            cls.__name__, [InitErrorDetails(type=error, loc=at, input=_shown(bad))]
        )

    @model_validator(mode="before")
    @classmethod
    def _json_integers(cls, data: Any) -> Any:
        found = json_integers_only(cls, data)
        if found is None:
            return data
        at, bad = found
        raise ValidationError.from_exception_data(
            cls.__name__, [InitErrorDetails(type="int_type", loc=at, input=_shown(bad))]
        )


Location = tuple[str | int, ...]


def json_integers_only(model: type[BaseModel], data: Any) -> tuple[Location, Any] | None:
    """The location and value of the first integer field of `model` in `data` (the body as sent)
    that is not a JSON integer (a string, a boolean, a float), looking into nested models; or
    None. Other mistakes (a missing field, a wrong type elsewhere) are left to pydantic."""
    if not isinstance(data, dict):
        return None
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key in data:
            found = _loose_integer(field.annotation, data[key])
            if found is not None:
                at, bad = found
                return (key, *at), bad
    return None


def _loose_integer(annotation: Any, value: Any) -> tuple[Location, Any] | None:
    """Where in `value` an `int` of `annotation` is not a JSON integer (see above)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _loose_integer(args[0], value)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        arms = [arg for arg in args if arg is not type(None)]
        # `int | None` and `Model | None`: the arm is known; wider unions are left to pydantic.
        return _loose_integer(arms[0], value) if len(arms) == 1 else None
    if origin in (list, set, frozenset, tuple) and isinstance(value, list):
        item = args[0] if args else Any
        for index, element in enumerate(value):
            found = _loose_integer(item, element)
            if found is not None:
                return (index, *found[0]), found[1]
        return None
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        for key, element in value.items():
            found = _loose_integer(args[1], element)
            if found is not None:
                return (key, *found[0]), found[1]
        return None
    if annotation is int:
        return None if type(value) is int else ((), value)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return json_integers_only(annotation, value)
    return None


def _shown(value: Any) -> Any:
    """What the error echoes of the bad value: scalars only (a too-deep container is not
    repeated back)."""
    return value if isinstance(value, str | int | float | bool) or value is None else "…"
