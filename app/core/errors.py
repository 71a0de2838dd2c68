"""One exception hierarchy, rendered as RFC 9457 problem+json for every error.

Each class carries its HTTP status and a stable `type` slug. Services raise these; the handlers in
`install_error_handlers` render them, and also render FastAPI's validation errors, Starlette's
HTTP errors (404 unknown route, 405) and anything unhandled (500, no stack trace to the client).

This module holds the base class, the generic problems (one per status) and the ones core itself
raises; a domain's own problem types live beside it, in its `errors` module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"

logger = logging.getLogger("tessera.errors")


class TesseraError(Exception):
    """Base of every error Tessera reports to a client."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = list(errors) if errors else []
        self.headers = headers or {}
        self.extra = extra

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        for key, value in self.extra.items():
            body.setdefault(key, value)  # extensions never override the standard members
        return body


class BadRequest(TesseraError):
    pass


class Unauthorized(TesseraError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(TesseraError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(TesseraError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(TesseraError):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(TesseraError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(TesseraError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(TesseraError):
    """422: the request was well-formed but its content is wrong; `errors` say where."""

    status, slug, title = 422, "validation-failed", "Validation failed"


class TooManyRequests(TesseraError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class ServiceUnavailable(TesseraError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


# --- problem types a client can branch on -----------------------------------------------------
#
# One class per condition a client can act on, each with its own `type` slug; endpoints list the
# ones they may answer with in their OpenAPI `responses` (`problem_responses`). Each domain keeps
# its own in its `errors` module (`app.jobs.errors`, `payouts.errors`, …); core keeps the ones
# core itself raises.


# Here, not in app.accounts: core's token check answers it.
class AccountSuspended(Forbidden):
    """The account is suspended (`reason` says why); its tokens answer this until it is
    reactivated."""

    slug, title = "account-suspended", "Account suspended"


ProblemEntry = type[TesseraError] | tuple[type[TesseraError], str]

PROBLEMS_ATTRIBUTE = "__tessera_problems__"
_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])


def raises(*problems: ProblemEntry) -> Callable[[_Dependency], _Dependency]:
    """Declare the problems a FastAPI dependency may answer with: the OpenAPI document lists
    them on every route that depends on it (`app.core.openapi`), so a route that checks the
    caller's token documents its 401 without saying so itself."""

    def declare(dependency: _Dependency) -> _Dependency:
        setattr(dependency, PROBLEMS_ATTRIBUTE, problems)
        return dependency

    return declare


def declared_problems(dependency: object) -> tuple[ProblemEntry, ...]:
    problems: tuple[ProblemEntry, ...] = getattr(dependency, PROBLEMS_ATTRIBUTE, ())
    return problems


def problem_responses(*problems: ProblemEntry) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the problems an endpoint may answer with, grouped by status: each
    as `application/problem+json`, its type named in the description and given as an example.
    A problem may come with a note on when this endpoint answers it: `(PayloadTooLarge, "...")`.
    """
    by_status: dict[int, list[tuple[type[TesseraError], str]]] = {}
    for entry in problems:
        problem, note = entry if isinstance(entry, tuple) else (entry, entry.title)
        by_status.setdefault(problem.status, []).append((problem, note))
    responses: dict[int | str, dict[str, Any]] = {}
    for status, entries in sorted(by_status.items()):
        responses[status] = {
            "description": "; ".join(f"`{c.slug}`: {note}" for c, note in entries),
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": PROBLEM_SCHEMA_REF},
                    "examples": {
                        c.slug: {
                            "summary": c.title,
                            "value": {
                                "type": PROBLEM_BASE + c.slug,
                                "title": c.title,
                                "status": c.status,
                            },
                        }
                        for c, _ in entries
                    },
                }
            },
        }
    return responses


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is sent (for the OpenAPI document)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["/problems/not-found"], description="a stable slug per condition")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="one entry per bad field: `pointer` (RFC 6901) or `parameter`"
    )


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"


def add_problem_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """Register `Problem` in an OpenAPI document's components (what `problem_responses` refers
    to)."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    return openapi


def problem_response(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def json_pointer(parts: Sequence[str | int]) -> str:
    """RFC 6901 pointer (as a URI fragment, like RFC 9457's examples) for a location."""
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return "#/" + "/".join(escaped) if escaped else "#"


def validation_problem(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Turn pydantic/FastAPI error dicts into problem `errors`: a pointer per bad body field,
    a named parameter for query, path and header values."""
    out: list[dict[str, Any]] = []
    for error in errors:
        loc = list(error.get("loc", ()))
        where = loc[0] if loc else "body"
        entry: dict[str, Any] = {"detail": error.get("msg", "invalid"), "code": error.get("type")}
        if where == "body":
            rest = loc[1:]
            if error.get("type") == "json_invalid":
                rest = []
            entry["pointer"] = json_pointer(rest)
        else:
            entry["in"] = where
            entry["parameter"] = str(loc[1]) if len(loc) > 1 else ""
        out.append(entry)
    return out


def unreadable_body(exc: StarletteHTTPException) -> ValidationFailed | None:
    """A JSON body Python's parser could not read, as the 422 any other malformed JSON gets.

    FastAPI turns what `json.loads` raises besides `JSONDecodeError` into a bare 400 ("There was
    an error parsing the body"): a `RecursionError` for nesting deeper than the interpreter's
    recursion limit (`[` 100,000 times), a `ValueError` for bytes that are not UTF-8 or an
    integer of more than 4,300 digits."""
    cause = exc.__cause__
    if exc.status_code != 400 or not isinstance(cause, RecursionError | ValueError):
        return None
    if isinstance(cause, RecursionError):
        detail, code = "is nested too deeply to be read (at most 64 levels are stored)", "too_deep"
    elif isinstance(cause, UnicodeDecodeError):
        detail, code = "is not valid UTF-8", "json_invalid"
    else:
        detail, code = "could not be read as JSON (a number too long to read?)", "json_invalid"
    return ValidationFailed(
        "The request body is not JSON this service can read",
        errors=[{"pointer": "#", "detail": detail, "code": code}],
    )


# Starlette's HTTP errors that have a problem type of our own (413's phrase, which a slug would
# be made of, differs between Python versions).
_HTTP_PROBLEMS: dict[int, type[TesseraError]] = {413: PayloadTooLarge}


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of `app` answers at `path`. (Starlette's 405 names the methods
    of the first route matching the path only, though several routes may share it.)"""
    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        regex, route_methods = getattr(route, "path_regex", None), route.methods
        if regex is not None and route_methods and regex.match(path):
            methods |= route_methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    async def tessera_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TesseraError)
        return problem_response(exc.to_problem(request.url.path), exc.status, exc.headers)

    async def request_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        err = ValidationFailed(
            "The request did not match what this endpoint expects",
            errors=validation_problem(exc.errors()),
        )
        return problem_response(err.to_problem(request.url.path), err.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        unreadable = unreadable_body(exc)
        if unreadable is not None:
            return problem_response(unreadable.to_problem(request.url.path), unreadable.status)
        status = exc.status_code
        headers = dict(exc.headers or {})
        if status == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        problem = _HTTP_PROBLEMS.get(status)
        if problem is not None:
            err = problem(exc.detail or None, headers=headers)
            return problem_response(err.to_problem(request.url.path), status, headers)
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        slug = title.lower().replace(" ", "-")
        body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
        if exc.detail and exc.detail != title:
            body["detail"] = exc.detail
        body["instance"] = request.url.path
        return problem_response(body, status, headers)

    app.add_exception_handler(TesseraError, tessera_error)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(StarletteHTTPException, http_error)


def internal_error_body(request_id: str) -> dict[str, Any]:
    return {
        "type": PROBLEM_BASE + "internal-error",
        "title": "Internal server error",
        "status": 500,
        "detail": f"Something went wrong on our side; quote request id {request_id} when asking.",
        "request_id": request_id,
    }
