"""Server-side request forgery: webhook URLs may reach only public addresses (unless a setting
allows a network), checked at registration and again at connect time; redirects are never
followed; response bodies are read up to a cap; attempts time out."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.webhooks import delivery
from app.webhooks.delivery import AddressPolicy
from tests.support import Account, assert_problem
from tests.webhooks.receiver import Receiver, Reply, running_receiver

NO_PRIVATE = AddressPolicy.of([])


@pytest.mark.parametrize(
    ("address", "permitted"),
    [
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:93.184.216.34", True),
    ],
)
def test_only_public_addresses_are_permitted_by_default(address: str, permitted: bool) -> None:
    assert NO_PRIVATE.permits(address) is permitted


def test_an_allowed_network_opens_exactly_that_network() -> None:
    policy = AddressPolicy.of(["127.0.0.1/32"])
    assert policy.permits("127.0.0.1")
    assert not policy.permits("127.0.0.2")
    assert not policy.permits("10.0.0.1")


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    policy = AddressPolicy.of([], resolve=lambda host, port: ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(delivery.DestinationRefused, match=r"10\.0\.0\.5"):
        policy.checked_addresses("mixed.example", 443)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",  # a name that resolves to 127.0.0.1
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/",
        "https://10.0.0.7/hook",
    ],
)
def test_registering_a_private_url_is_refused_by_default(
    client: TestClient, client_account: Account, url: str
) -> None:
    response = client.post(
        "/v1/webhooks/endpoints",
        json={"url": url, "event_types": ["job.completed"]},
        headers=client_account.headers,
    )
    body = assert_problem(response, 422)
    assert body["type"] == "/problems/webhook-url-not-allowed"
    assert body["errors"][0]["pointer"] == "#/url"
    assert (
        client.get("/v1/webhooks/endpoints", headers=client_account.headers).json()["items"] == []
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http://user:secret@example.com/hook",
        "http:///no-host",
        "http://example.com:99999/",
    ],
)
def test_non_http_urls_and_credentials_are_invalid(
    client: TestClient, client_account: Account, url: str
) -> None:
    response = client.post(
        "/v1/webhooks/endpoints",
        json={"url": url, "event_types": ["job.completed"]},
        headers=client_account.headers,
    )
    body = assert_problem(response, 422)
    assert body["type"] == "/problems/validation-failed"
    assert body["errors"][0]["pointer"] == "#/url"


def test_a_host_that_does_not_resolve_is_its_own_problem(
    client: TestClient, client_account: Account
) -> None:
    response = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "https://no-such-host.invalid/hook", "event_types": ["job.completed"]},
        headers=client_account.headers,
    )
    assert assert_problem(response, 422)["type"] == "/problems/webhook-url-unresolvable"


def test_the_address_is_checked_again_at_connect_time(receiver: Receiver) -> None:
    """DNS rebinding: a name that looked public at registration resolves to 127.0.0.1 now."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    policy = AddressPolicy.of([], resolve=lambda host, port: next(answers))
    url = f"http://rebind.example:{receiver.port}/hook"
    delivery.check_url(url, policy)  # registration: fine
    result = delivery.post(url, b"{}", {}, policy=policy, timeout=2, max_response_bytes=100)
    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("refused: rebind.example resolves to 127.0.0.1")
    assert receiver.received == []


def test_the_connection_goes_to_the_address_that_was_checked(receiver: Receiver) -> None:
    policy = AddressPolicy.of(["127.0.0.1/32"], resolve=lambda host, port: ["127.0.0.1"])
    url = f"http://receiver.example:{receiver.port}/hook"
    result = delivery.post(url, b"{}", {}, policy=policy, timeout=2, max_response_bytes=100)
    assert result.status_code == 200
    assert receiver.received[0].headers["host"] == f"receiver.example:{receiver.port}"


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    with running_receiver("127.0.0.2") as running:
        yield running


@pytest.mark.parametrize("target", ["second", "http://169.254.169.254/latest/meta-data"])
def test_redirects_are_never_followed(
    receiver: Receiver, second_receiver: Receiver, target: str
) -> None:
    location = second_receiver.url if target == "second" else target
    receiver.reply(Reply(302, headers={"location": location}))
    policy = AddressPolicy.of(["127.0.0.0/8"])  # even where the target would be allowed
    result = delivery.post(
        receiver.url, b"{}", {}, policy=policy, timeout=2, max_response_bytes=100
    )
    assert result.status_code == 302
    assert result.error is not None
    assert "not followed" in result.error
    assert len(receiver.received) == 1
    assert second_receiver.received == []


def test_an_attempt_times_out(receiver: Receiver) -> None:
    receiver.reply(Reply(200, delay=1.5))
    started = time.monotonic()
    result = delivery.post(
        receiver.url,
        b"{}",
        {},
        policy=AddressPolicy.of(["127.0.0.1/32"]),
        timeout=0.3,
        max_response_bytes=100,
    )
    assert time.monotonic() - started < 1.2
    assert result.status_code is None
    assert result.error == "timed out after 0.3 s"


def test_at_most_the_cap_of_a_response_is_read(receiver: Receiver) -> None:
    receiver.reply(Reply(500, body=b"x" * 200_000))
    result = delivery.post(
        receiver.url,
        b"{}",
        {},
        policy=AddressPolicy.of(["127.0.0.1/32"]),
        timeout=2,
        max_response_bytes=500,
    )
    assert result.status_code == 500
    assert result.excerpt == "x" * 500
    endless = itertools.repeat(b"y" * 1000)
    assert len(delivery.read_capped(endless, 5000, time.monotonic() + 60)) == 5000


def test_a_slow_body_is_cut_at_the_deadline() -> None:
    def trickle() -> Iterator[bytes]:
        while True:
            time.sleep(0.05)
            yield b"z"

    started = time.monotonic()
    assert delivery.read_capped(trickle(), 10_000, started + 0.3)
    assert time.monotonic() - started < 1.0
