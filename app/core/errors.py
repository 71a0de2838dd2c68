"""One exception hierarchy, rendered as RFC 9457 problem+json for every error.

Each class carries its HTTP status and a stable `type` slug. Services raise these; the handlers in
`install_error_handlers` render them, and also render FastAPI's validation errors, Starlette's
HTTP errors (404 unknown route, 405) and anything unhandled (500, no stack trace to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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


class InsufficientFunds(TesseraError):
    """402: a client's available balance does not cover what the action commits to escrow. The
    problem states the shortfall (`shortfall_micros`, and `required_micros`, `available_micros`),
    so the client knows how much to add."""

    status, slug, title = 402, "insufficient-funds", "Insufficient funds"


class SignatureInvalid(TesseraError):
    """400: a webhook whose signature does not verify (forged, altered or stale)."""

    status, slug, title = 400, "signature-invalid", "Signature invalid"


class Forbidden(TesseraError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(TesseraError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(TesseraError):
    status, slug, title = 409, "conflict", "Conflict"


class ProviderUnavailable(Conflict):
    """409: the action needs a payments provider this installation does not use (card funding
    and connected accounts need TESSERA_PAYOUTS_PROVIDER=stripe; CSV settlement needs manual)."""

    slug, title = "provider-unavailable", "Payments provider unavailable"


class JobNotActivated(Conflict):
    """409: the job has no escrow yet; activating it commits its budget (and fixes its pay
    terms), after which money can be added to it."""

    slug, title = "job-not-activated", "Job not activated"


class PayoutWrongState(Conflict):
    """409: the payout is not in a state the action applies to (`status` says which it is)."""

    slug, title = "payout-wrong-state", "Payout in the wrong state"


class PayoutInProgress(Conflict):
    """409: the payout is being sent or reconciled right now; try again in a moment."""

    slug, title = "payout-in-progress", "Payout in progress"


class EarningsFinal(Conflict):
    """409: the assignment's earnings are already final (approved or paid out) and cannot be
    reversed."""

    slug, title = "earnings-final", "Earnings already final"


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
        status = exc.status_code
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        slug = title.lower().replace(" ", "-")
        body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
        if exc.detail and exc.detail != title:
            body["detail"] = exc.detail
        body["instance"] = request.url.path
        return problem_response(body, status, dict(exc.headers or {}))

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
