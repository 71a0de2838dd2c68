"""Read deadlines for `tessera serve`: a client that is slow to send its request is dropped.

Found before: 200 connections dribbling headers or bodies a byte at a time stayed open for 60 s
and more. uvicorn has no header or body read timeout (its `timeout_keep_alive` only covers the
idle time between requests, and nothing covers a connection that has sent nothing yet), so
`tessera serve` runs uvicorn with this HTTP protocol: uvicorn's own (httptools), plus two
deadlines per request, each a whole-phase limit that dribbling cannot stretch:

- the request line and headers must arrive within `TESSERA_HEADER_TIMEOUT_SECONDS` of the
  connection opening (or of the first byte of the next request on a kept-alive connection);
- the body must arrive within `TESSERA_BODY_TIMEOUT_SECONDS` of the headers (uploads included:
  raise it for big files over slow links).

Past a deadline the connection is closed (the app, if it was reading the body, sees the client
disconnect). Once a request is read the deadline is off: a slow endpoint is not cut short.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("tessera.serve")


class DeadlineHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a body deadline."""

    def __init__(self, *args: Any, header_timeout: float, body_timeout: float, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float, phase: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("closing a connection whose %s did not arrive in time", phase)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, "request headers")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout, "request headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout, "request body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def http_protocol(header_timeout: float, body_timeout: float) -> Any:
    """The `http=` argument of `uvicorn.run` (a picklable factory, for worker processes)."""
    return partial(DeadlineHttpProtocol, header_timeout=header_timeout, body_timeout=body_timeout)
