"""`Idempotency-Key` for requests that move money, with Stripe's semantics.

A caller that sends `Idempotency-Key: <key>` on a money request (an admin credit, a deposit, a
checkout, a payout batch, a payout retry) may send it again, say after a timeout, without
moving the money twice: the same key with the same request (method, path, query and JSON body)
within 24 hours answers the first response again, with `Idempotent-Replayed: true`; the same
key with a different request is a 422 `idempotency-key-reused`. Keys are per caller (two
callers' keys never meet).

How: the endpoint asks `IdempotentCall.replay` first. It claims the key by inserting its row in
the request's own transaction (a unique index on caller and key); a concurrent request with the
same key waits for that transaction on the index (PostgreSQL; SQLite's one writer serialises
them anyway) and then finds the response it stored. `remember` stores the response in the same
transaction as the money it moved, so a request that failed (a 402, a 409) leaves no row and its
retry runs anew. Rows older than 24 hours are forgotten: by the next request with their key, and
by the hourly `idempotency.prune` job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core.background import JobContext, background_job
from app.core.clock import utcnow
from app.core.errors import Conflict, TesseraError, raises
from app.core.security import CurrentPrincipal
from app.models.requests import IdempotentRequest

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT = timedelta(hours=24)
PRUNE_JOB = "idempotency.prune"


class IdempotencyKeyReused(TesseraError):
    """422: this `Idempotency-Key` was sent before (within 24 hours) with a different request;
    a key names one request. Use a new key for a new request."""

    status, slug, title = 422, "idempotency-key-reused", "Idempotency key reused"


class IdempotentRequestInProgress(Conflict):
    """409: the first request with this `Idempotency-Key` has not finished; try again."""

    slug, title = "idempotent-request-in-progress", "Request with this key in progress"


@dataclass(frozen=True)
class IdempotentCall:
    """One money request and the caller's `Idempotency-Key` (None: the caller sent none, and
    the request is not remembered)."""

    principal_id: int
    key: str | None
    fingerprint: str

    def replay(self, session: Session) -> Response | None:
        """The first response to this key (the endpoint returns it and does nothing else), or
        None after claiming the key for this request (the endpoint then does its work and
        calls `remember` before it commits). 422 for the key sent with another request."""
        if self.key is None:
            return None
        now = utcnow()
        mine = (
            IdempotentRequest.principal_id == self.principal_id,
            IdempotentRequest.key == self.key,
        )
        session.execute(
            delete(IdempotentRequest).where(*mine, IdempotentRequest.created_at < now - KEPT)
        )
        dialect = session.get_bind().dialect.name
        claim = (pg_insert if dialect == "postgresql" else sqlite_insert)(IdempotentRequest)
        claimed = session.execute(
            claim.values(
                principal_id=self.principal_id,
                key=self.key,
                fingerprint=self.fingerprint,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["principal_id", "key"])
            .returning(IdempotentRequest.id)
        ).first()
        if claimed is not None:
            return None
        first = session.execute(
            select(
                IdempotentRequest.fingerprint,
                IdempotentRequest.status_code,
                IdempotentRequest.response_body,
            ).where(*mine)
        ).one()
        session.rollback()  # nothing of this request's own is kept
        if first.fingerprint != self.fingerprint:
            raise IdempotencyKeyReused(
                f"The {HEADER} {self.key!r} was used for a different request within the last "
                "24 hours; send a new key for a new request"
            )
        if first.status_code is None:
            raise IdempotentRequestInProgress(
                f"The first request with the {HEADER} {self.key!r} is still being processed"
            )
        return JSONResponse(
            first.response_body, status_code=first.status_code, headers={REPLAYED_HEADER: "true"}
        )

    def remember(self, session: Session, status_code: int, body: Any) -> None:
        """Store the response this request is about to get (in its transaction, before the
        commit): a retry with the same key gets it again."""
        if self.key is None:
            return
        session.execute(
            update(IdempotentRequest)
            .where(
                IdempotentRequest.principal_id == self.principal_id,
                IdempotentRequest.key == self.key,
            )
            .values(status_code=status_code, response_body=jsonable_encoder(body))
        )


async def _canonical_body(request: Request) -> bytes:
    """The body with JSON's insignificant differences (spacing, key order) taken out."""
    raw = await request.body()
    try:
        return json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        return raw


@raises(IdempotencyKeyReused, IdempotentRequestInProgress)
async def idempotent_call(
    request: Request,
    principal: CurrentPrincipal,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description=(
                "Optional, up to 255 printable ASCII characters (a UUID, say). Sending the same "
                "key again within 24 hours with the same request replays the first response "
                "(header `Idempotent-Replayed: true`) without moving money again; with a "
                "different request it is a 422 `idempotency-key-reused`. Per caller. A request "
                "that failed is not remembered."
            ),
        ),
    ] = None,
) -> IdempotentCall:
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.url.query):
        digest.update(part.encode() + b"\n")
    digest.update(await _canonical_body(request))
    return IdempotentCall(principal.id, key, digest.hexdigest())


Idempotent = Annotated[IdempotentCall, Depends(idempotent_call)]


@background_job(PRUNE_JOB)
def prune_keys(ctx: JobContext) -> None:
    """Forget requests remembered longer than 24 hours."""
    ctx.session.execute(
        delete(IdempotentRequest).where(IdempotentRequest.created_at < utcnow() - KEPT)
    )
