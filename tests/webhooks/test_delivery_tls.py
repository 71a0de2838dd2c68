"""Issue #22 finding 15 (in part): an attempt builds no TLS context.

Each attempt once built two TLS contexts (~24 ms each, loading the CA bundle), even for
http:// receivers. Now http:// attempts load none, and https:// attempts share one context.
"""

from __future__ import annotations

import ssl

import httpx
import pytest

from app.webhooks import delivery
from app.webhooks.delivery import AddressPolicy
from tests.webhooks.receiver import Receiver

LOCAL = AddressPolicy.of(["127.0.0.1/32"])


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every TLS context httpx builds from now on (handing it a built one builds none)."""
    contexts: list[object] = []
    real = httpx.create_ssl_context

    def counting(*args: object, **kw: object) -> object:
        given = kw.get("verify", args[0] if args else True)
        context = real(*args, **kw)  # type: ignore[arg-type]
        if not isinstance(given, ssl.SSLContext):
            contexts.append(context)
        return context

    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    monkeypatch.setattr("httpx._transports.default.create_ssl_context", counting)
    delivery.tls_context.cache_clear()
    return contexts


def test_finding_15_an_http_attempt_builds_no_tls_context(
    receiver: Receiver, built: list[object]
) -> None:
    for _ in range(3):
        result = delivery.post(
            receiver.url, b"{}", {}, policy=LOCAL, timeout=5, max_response_bytes=100
        )
        assert result.status_code == 200, result
    assert built == []


def test_finding_15_https_attempts_share_one_tls_context(built: list[object]) -> None:
    first = delivery.CheckedTransport(LOCAL)
    second = delivery.CheckedTransport(LOCAL)
    assert first._pool._ssl_context is second._pool._ssl_context
    assert len(built) == 1
