"""Issue #22 finding 13: clients slow to send their request are dropped.

Before, connections dribbling headers or bodies stayed open for as long as they liked (uvicorn
has no header or body read timeout). `tessera serve` runs uvicorn with
`app.core.slow_clients.http_protocol`; here a real uvicorn server runs it with short deadlines,
and raw sockets dribble.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from app.core.slow_clients import http_protocol

DEADLINE = 0.5
PATIENCE = 20.0  # far beyond the deadline: only a connection that is never closed fails


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A plain ASGI app that reads the whole body and answers its length."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = str(size).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        echo, http=http_protocol(DEADLINE, DEADLINE), log_config=None, lifespan="off"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.01)
    try:
        yield sock.getsockname()
    finally:
        running.should_exit = True
        thread.join(10)
        sock.close()


def dribble_until_closed(address: tuple[str, int], head: bytes, drip: bytes) -> float:
    """Send `head`, then `drip` a byte at a time every 0.1 s until the server closes the
    connection; return how long that took."""
    started = time.monotonic()
    with socket.create_connection(address) as conn:
        conn.settimeout(0.1)
        conn.sendall(head)
        for byte in drip * 1000:
            if time.monotonic() - started > PATIENCE:
                break
            try:
                if conn.recv(1024) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                pass
            try:
                conn.sendall(bytes([byte]))
            except OSError:  # reset: closed
                return time.monotonic() - started
    return time.monotonic() - started


def test_finding_13_a_client_dribbling_headers_is_disconnected(
    server: tuple[str, int],
) -> None:
    took = dribble_until_closed(server, b"GET / HTTP/1.1\r\nHost: x\r\n", b"X-Slow: a")
    assert DEADLINE * 0.9 <= took < PATIENCE


def test_finding_13_a_client_dribbling_a_body_is_disconnected(server: tuple[str, int]) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    took = dribble_until_closed(server, head, b"a")
    assert DEADLINE * 0.9 <= took < PATIENCE


def test_finding_13_a_connection_that_sends_nothing_is_disconnected(
    server: tuple[str, int],
) -> None:
    with socket.create_connection(server) as conn:
        conn.settimeout(PATIENCE)
        assert conn.recv(1024) == b""


def test_finding_13_a_request_sent_at_once_is_answered_and_kept_alive(
    server: tuple[str, int],
) -> None:
    with socket.create_connection(server) as conn:
        conn.settimeout(PATIENCE)
        for _ in range(2):  # the deadline is off once a request is read, and re-armed after
            conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            answer = conn.recv(1024)
            assert answer.startswith(b"HTTP/1.1 200"), answer
            assert answer.endswith(b"5")
