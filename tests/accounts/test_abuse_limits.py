"""Abuse limits on login and signup (429 with Retry-After, per account and per address, shared by
every API process through the database), and login tokens that expire and are capped per user."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.accounts import throttle
from app.accounts.limits import Counter, Rule, decide
from app.core import clock
from app.core.db import Database
from app.core.errors import TooManyRequests
from app.core.settings import Settings
from app.main import create_app
from app.models import AuthLimit, Role
from tests.support import Account, assert_problem

PASSWORD = "correct horse battery"
LIMITED = {
    "auth_account_failures": 3,
    "auth_account_delay_seconds": 60,
    "auth_address_logins": 1000,
    "auth_address_signups": 1000,
    "auth_window_seconds": 600,
    "auth_lockout_seconds": 300,
}


@pytest.fixture(autouse=True)
def frozen_clock() -> None:
    """Waits are asserted to the second: the clock stands still unless a test moves it
    (conftest resets it after each test)."""
    clock.freeze()


@pytest.fixture
def limited(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=LIMITED), db)) as client:
        yield client


def login(client: TestClient, email: str, password: str = "wrong password") -> object:
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def signup(client: TestClient, email: str) -> object:
    body = {"email": email, "password": PASSWORD, "display_name": "A", "role": "annotator"}
    return client.post("/v1/auth/signup", json=body)


# --- the decision, as a table ------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULE = Rule(limit=2, window=timedelta(minutes=10), lockout=timedelta(minutes=5))


@pytest.mark.parametrize(
    ("counter", "now", "admitted", "after", "retry_after"),
    [
        (None, T0, True, Counter(T0, 1), None),
        (Counter(T0, 1), T0 + timedelta(minutes=1), True, Counter(T0, 2), None),
        # the attempt past the limit is refused and locks the key
        (
            Counter(T0, 2),
            T0 + timedelta(minutes=2),
            False,
            Counter(T0, 2, T0 + timedelta(minutes=7)),
            timedelta(minutes=5),
        ),
        # locked: refused, not counted, told how long is left
        (
            Counter(T0, 2, T0 + timedelta(minutes=7)),
            T0 + timedelta(minutes=6),
            False,
            Counter(T0, 2, T0 + timedelta(minutes=7)),
            timedelta(minutes=1),
        ),
        # the lockout is over: counting starts afresh
        (
            Counter(T0, 2, T0 + timedelta(minutes=7)),
            T0 + timedelta(minutes=7),
            True,
            Counter(T0 + timedelta(minutes=7), 1),
            None,
        ),
        # the window is over: counting starts afresh
        (
            Counter(T0, 2),
            T0 + timedelta(minutes=10),
            True,
            Counter(T0 + timedelta(minutes=10), 1),
            None,
        ),
    ],
)
def test_the_limit_decision_table(
    counter: Counter | None,
    now: datetime,
    admitted: bool,
    after: Counter,
    retry_after: timedelta | None,
) -> None:
    decision = decide(counter, RULE, now)
    assert decision.admitted is admitted
    assert decision.counter == after
    assert decision.retry_after == retry_after


def test_ipv6_addresses_count_per_64_and_ipv4_per_address() -> None:
    assert throttle.address_of("2001:db8:1:2:aaaa::1") == throttle.address_of("2001:db8:1:2::ff")
    assert throttle.address_of("2001:db8:1:3::1") != throttle.address_of("2001:db8:1:2::1")
    assert throttle.address_of("192.0.2.1") != throttle.address_of("192.0.2.2")
    assert throttle.address_of(None) == "unknown"


GROWING = Rule(
    limit=2,
    window=timedelta(minutes=10),
    lockout=timedelta(minutes=5),
    first_delay=timedelta(seconds=60),
)
S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("counter", "now", "admitted", "after", "retry_after"),
    [
        (None, T0, True, Counter(T0, 1), None),
        (Counter(T0, 1), T0 + S, True, Counter(T0 + S, 2), None),
        # past the free attempts: refused, and the key waits the first delay
        (Counter(T0, 2), T0 + 2 * S, False, Counter(T0, 2, T0 + 62 * S), 60 * S),
        # waiting: refused, not counted, told how long is left
        (Counter(T0, 2, T0 + 62 * S), T0 + 32 * S, False, Counter(T0, 2, T0 + 62 * S), 30 * S),
        # the wait is over: one more attempt goes ahead ...
        (Counter(T0, 2, T0 + 62 * S), T0 + 70 * S, True, Counter(T0 + 70 * S, 3), None),
        # ... and the next waits twice as long
        (Counter(T0, 3), T0 + 71 * S, False, Counter(T0, 3, T0 + 191 * S), 120 * S),
        # at most the lockout
        (Counter(T0, 12), T0, False, Counter(T0, 12, T0 + 300 * S), 300 * S),
        # a quiet window after the last wait: counting starts afresh
        (Counter(T0, 5, T0 + 60 * S), T0 + 660 * S, True, Counter(T0 + 660 * S, 1), None),
    ],
)
def test_finding_11_the_growing_delay_decision_table(
    counter: Counter | None,
    now: datetime,
    admitted: bool,
    after: Counter,
    retry_after: timedelta | None,
) -> None:
    decision = decide(counter, GROWING, now)
    assert decision.admitted is admitted
    assert decision.counter == after
    assert decision.retry_after == retry_after


# --- login and signup over HTTP ----------------------------------------------------------------


def test_failed_logins_from_an_address_make_the_next_wait_with_429_and_retry_after(
    limited: TestClient, make_account: Callable[..., Account]
) -> None:
    user = make_account(Role.annotator, password=PASSWORD)
    for _ in range(3):
        assert_problem(login(limited, user.user.email), 401)
    refused = login(limited, user.user.email)
    body = assert_problem(refused, 429, "too-many-requests")
    assert refused.headers["retry-after"] == "60"
    assert body["retry_after_seconds"] == 60
    # Waiting means waiting: the right password is refused too, without being checked.
    assert_problem(login(limited, user.user.email, PASSWORD), 429)
    clock.travel(timedelta(seconds=61))
    assert login(limited, user.user.email, PASSWORD).status_code == 200


def test_an_unknown_email_is_limited_exactly_like_an_existing_one(
    limited: TestClient, make_account: Callable[..., Account]
) -> None:
    user = make_account(Role.annotator, password=PASSWORD)

    def answers(email: str) -> list[tuple[int, str | None, str]]:
        out = []
        for _ in range(5):
            response = login(limited, email)
            out.append(
                (
                    response.status_code,
                    response.headers.get("retry-after"),
                    response.json()["detail"],
                )
            )
        return out

    assert answers(user.user.email) == answers("nobody-here@example.com")


def test_a_successful_login_clears_the_accounts_failures(
    limited: TestClient, make_account: Callable[..., Account]
) -> None:
    user = make_account(Role.annotator, password=PASSWORD)
    for _ in range(2):
        assert_problem(login(limited, user.user.email), 401)
    assert login(limited, user.user.email.upper(), PASSWORD).status_code == 200
    for _ in range(3):
        assert_problem(login(limited, user.user.email), 401)
    assert_problem(login(limited, user.user.email), 429)


def test_finding_11_a_third_party_cannot_lock_the_owner_out_of_their_usual_address(
    settings: Settings, db: Database, make_account: Callable[..., Account]
) -> None:
    """Before, ten wrong passwords from anywhere locked the account for everyone for 15
    minutes, the right password included. Now the guesses wait growing delays at the guesser's
    address only, and the owner signs in from theirs."""
    user = make_account(Role.annotator, password=PASSWORD)
    app = create_app(settings.model_copy(update=LIMITED), db)
    with TestClient(app, client=("198.51.100.66", 4000)) as attacker:
        for _ in range(3):
            assert_problem(login(attacker, user.user.email), 401)
        assert login(attacker, user.user.email).headers["retry-after"] == "60"
        for _ in range(5):
            assert_problem(login(attacker, user.user.email), 429)
        # each wait over buys one more check, and a longer wait
        clock.travel(timedelta(seconds=61))
        assert_problem(login(attacker, user.user.email), 401)
        assert login(attacker, user.user.email).headers["retry-after"] == "120"
    with TestClient(app, client=("192.0.2.10", 5000)) as owner:
        assert login(owner, user.user.email, PASSWORD).status_code == 200
        # and the owner's own typos do not inherit the attacker's delays
        for _ in range(3):
            assert_problem(login(owner, user.user.email), 401)
    with TestClient(app, client=("198.51.100.66", 4000)) as attacker:
        assert_problem(login(attacker, user.user.email, PASSWORD), 429)


def test_logins_from_one_address_are_limited_across_accounts(
    settings: Settings, db: Database
) -> None:
    app = create_app(settings.model_copy(update={**LIMITED, "auth_address_logins": 4}), db)
    with TestClient(app) as client:
        for n in range(4):
            assert_problem(login(client, f"someone{n}@example.com"), 401)
        refused = login(client, "someone-else@example.com")
        assert "address" in assert_problem(refused, 429)["detail"]
        assert refused.headers["retry-after"] == "300"
    with TestClient(app, client=("192.0.2.7", 5000)) as elsewhere:
        assert_problem(login(elsewhere, "someone-else@example.com"), 401)


def test_signups_from_one_address_are_limited(settings: Settings, db: Database) -> None:
    app = create_app(settings.model_copy(update={**LIMITED, "auth_address_signups": 2}), db)
    with TestClient(app) as client:
        assert signup(client, "a1@example.com").status_code == 201
        assert_problem(signup(client, "a1@example.com"), 409)  # counted too: no free probing
        refused = signup(client, "a3@example.com")
        assert_problem(refused, 429, "too-many-requests")
        assert int(refused.headers["retry-after"]) == 300
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(AuthLimit)) == 1


def test_two_api_processes_share_the_limits(settings: Settings, db: Database) -> None:
    """Each app is what one API process serves; the counters live in the shared database."""
    limited = settings.model_copy(update=LIMITED)
    first, second = create_app(limited, db), create_app(limited, db)
    with TestClient(first) as one, TestClient(second) as two:
        assert_problem(login(one, "shared@example.com"), 401)
        assert_problem(login(two, "shared@example.com"), 401)
        assert_problem(login(one, "shared@example.com"), 401)
        assert_problem(login(two, "shared@example.com"), 429)


@pytest.mark.commits  # threads race on real commits
def test_concurrent_attempts_get_exactly_the_limit(settings: Settings, db: Database) -> None:
    """Counting first, atomically: 24 attempts at once at a limit of 5 admit exactly 5."""
    limited = settings.model_copy(update={**LIMITED, "auth_account_failures": 5})
    attempts = throttle.login_attempts(limited, email="burst@example.com", host="192.0.2.9")
    outcomes: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(24)

    def attempt() -> None:
        start.wait()
        try:
            throttle.admit(db, attempts, clock.utcnow())
            admitted = True
        except TooManyRequests:
            admitted = False
        with lock:
            outcomes.append(admitted)

    threads = [threading.Thread(target=attempt) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False] * 19 + [True] * 5


def test_finished_counters_are_pruned(settings: Settings, db: Database) -> None:
    limited = settings.model_copy(update=LIMITED)
    now = clock.utcnow()
    throttle.admit(db, throttle.signup_attempts(limited, host="192.0.2.1"), now)
    throttle.admit(
        db, throttle.signup_attempts(limited, host="192.0.2.2"), now + timedelta(minutes=9)
    )
    with db.transaction() as session:
        assert throttle.prune(session, limited, now + timedelta(minutes=10)) == 1
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(AuthLimit)) == 1


# --- login tokens ------------------------------------------------------------------------------


def test_login_tokens_expire(
    client: TestClient, make_account: Callable[..., Account], settings: Settings
) -> None:
    user = make_account(Role.annotator, password=PASSWORD)
    token = login(client, user.user.email, PASSWORD).json()["token"]  # type: ignore[attr-defined]
    assert token["kind"] == "login"
    expires = datetime.fromisoformat(token["expires_at"])
    assert abs(expires - clock.utcnow() - timedelta(days=settings.login_token_days)) < timedelta(
        minutes=1
    )
    headers = {"Authorization": f"Bearer {token['secret']}"}
    assert client.get("/v1/me", headers=headers).status_code == 200
    clock.travel(timedelta(days=settings.login_token_days, seconds=1))
    assert "expired" in assert_problem(client.get("/v1/me", headers=headers), 401)["detail"]


def test_a_user_keeps_at_most_the_cap_of_live_login_tokens(
    settings: Settings, db: Database, make_account: Callable[..., Account]
) -> None:
    app: FastAPI = create_app(settings.model_copy(update={"login_tokens_per_user": 2}), db)
    user = make_account(Role.annotator, password=PASSWORD)
    with TestClient(app) as client:
        made = client.post("/v1/me/tokens", headers=user.headers, json={"name": "script"})
        script = {"Authorization": f"Bearer {made.json()['secret']}"}
        secrets = [
            login(client, user.user.email, PASSWORD).json()["token"]["secret"]  # type: ignore[attr-defined]
            for _ in range(3)
        ]
        oldest, *kept = ({"Authorization": f"Bearer {s}"} for s in secrets)
        assert "revoked" in assert_problem(client.get("/v1/me", headers=oldest), 401)["detail"]
        for headers in (*kept, script, user.headers):  # tokens made on purpose are not counted
            assert client.get("/v1/me", headers=headers).status_code == 200
        kinds = sorted(
            (t["kind"], t["revoked_at"] is None)
            for t in client.get("/v1/me/tokens", headers=user.headers).json()
        )
        assert kinds == [
            ("api", True),
            ("api", True),
            ("login", False),
            ("login", True),
            ("login", True),
        ]
