"""A cap on the size of every request body (`TESSERA_MAX_REQUEST_BYTES`; dataset uploads have
their own, `TESSERA_MAX_UPLOAD_BYTES`).

Found before: a 100 MB login body was read into memory in full before anything looked at it.
Now a body is refused with 413 problem+json (`payload-too-large`) at the endpoint's first read
when its declared `Content-Length` is over the limit (nothing of it is read), and while it
streams in when its chunks add up to more (a chunked body has no `Content-Length`), so no
endpoint ever sees more than the limit. Endpoints that never read their body never read it.

Which limit applies depends on the endpoint, and routing has happened by the first read: the
endpoint is in the ASGI scope then, so the upload limit goes to the endpoints named as uploads
and the request limit to every other.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from `receive`, so it reaches the error handlers (rendered as `PayloadTooLarge`)
    through FastAPI's body parsing, which passes HTTP errors on as they are."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request bodies are limited to {limit} bytes here")


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        upload_max_bytes: int,
        uploads: Collection[Callable[..., Any]],
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes
        self.uploads = tuple(uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        limit: int | None = None
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal limit, received
            if limit is None:
                endpoint = scope.get("endpoint")
                upload = any(endpoint is u for u in self.uploads)
                limit = self.upload_max_bytes if upload else self.max_bytes
                if declared is not None and declared > limit:
                    raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, receive_within_limit, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    return int(value) if value is not None and value.isdigit() else None
