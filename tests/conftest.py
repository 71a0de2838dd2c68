"""Test harness: one database per test process (per pytest-xdist worker), built once with
Alembic; each test runs inside a transaction rolled back at its end (`tests/harness.py`), or,
marked `commits`, on the real engine with the tables emptied afterwards.

`pytest --db=sqlite` (default) or `--db=postgresql` (URL from TESSERA_TEST_DATABASE_URL; the suite
creates its own database on that server and drops it afterwards). With CI=true an unreachable
PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url

from app.accounts import service as accounts
from app.core import caches, clock
from app.core.db import Database, create_db_engine
from app.core.settings import Settings
from app.main import create_app
from app.models import Role
from migrations.schema import upgrade_to_head
from payouts import funding
from tests.harness import empty_tables, rolled_back
from tests.support import Account

# Property tests state behaviour, not speed (speed is measured in bench/): no per-example
# deadline, which a loaded CI machine would turn into flaky failures.
hypothesis.settings.register_profile("tessera", deadline=None)
hypothesis.settings.load_profile("tessera")

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tessera_test"
TEST_SECRET = "test-secret-key-" + "x" * 32


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=["sqlite", "postgresql"],
        default=os.environ.get("TESSERA_TEST_DB", "sqlite"),
        help="database the suite runs against",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite: runs only in the SQLite pass (what it shows is about SQLite)"
    )
    config.addinivalue_line(
        "markers",
        "commits: the test commits for real (threads or processes that must see each other's "
        "writes, background workers, crashes); its tables are emptied afterwards instead of its "
        "transaction being rolled back",
    )


@pytest.fixture(scope="session", autouse=True)
def private_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test process gets a temporary directory of its own, so tests that check what an
    import leaves in the temporary directory see their own files, not another xdist worker's
    (or another checkout's) imports running at the same moment."""
    before = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("tmp"))
    try:
        yield
    finally:
        tempfile.tempdir = before


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked for one database skip in the other's pass, saying where they run."""
    if config.getoption("--db") == "postgresql":
        other, skip = "sqlite", pytest.mark.skip(reason="runs in the --db=sqlite pass")
    else:
        other, skip = "postgresql", pytest.mark.skip(reason="runs in the --db=postgresql pass")
    for item in items:
        if other in item.keywords:
            item.add_marker(skip)


def _pg_admin_conninfo(url: str) -> tuple[str, str]:
    """(conninfo for the server's `postgres` database, name of the test database to create)."""
    parsed = make_url(url)
    base = parsed.database or "tessera_test"
    admin = parsed.set(drivername="postgresql", database="postgres")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return admin.render_as_string(hide_password=False), f"{base}_{worker}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.config.getoption("--db") == "sqlite":
        path = tmp_path_factory.mktemp("db") / "tessera-test.db"
        yield f"sqlite:///{path}"
        return
    url = os.environ.get("TESSERA_TEST_DATABASE_URL", DEFAULT_PG_URL)
    admin_conninfo, name = _pg_admin_conninfo(url)
    try:
        with psycopg.connect(admin_conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is unreachable at {url}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.exit(message + " (CI=true: failing instead of skipping)", returncode=3)
        pytest.skip(message)
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        log_json=False,
        demo=False,
        routing_cache_seconds=0,  # tests change grants and bans and expect them at once
        eligibility_cache_seconds=0,
        pay_preview_cache_seconds=0,
        _env_file=None,
    )  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """The test process's engine, its database migrated to head once."""
    built = create_db_engine(settings)
    upgrade_to_head(built)
    yield built
    built.dispose()


@pytest.fixture
def db(request: pytest.FixtureRequest, settings: Settings, engine: Engine) -> Iterator[Database]:
    """The test's database: inside a transaction rolled back when the test ends, or (marked
    `commits`) the real one, emptied afterwards."""
    if request.node.get_closest_marker("commits") is None:
        with rolled_back(engine, settings) as database:
            yield database
        return
    yield Database(settings, engine=engine)
    empty_tables(engine)


@pytest.fixture(autouse=True)
def _real_clock() -> Iterator[None]:
    yield
    clock.reset()


@pytest.fixture(autouse=True)
def _empty_caches() -> Iterator[None]:
    """Per-process caches never carry one test's jobs, verdicts or tokens into the next (ids
    are reused once tables are emptied)."""
    yield
    caches.clear_all()


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, db)


@pytest.fixture(scope="session")
def openapi_document(settings: Settings, engine: Engine) -> dict[str, Any]:
    """The service's OpenAPI document, generated once per test process (it depends on the
    routes and settings only; about half a second each time). Read it, never change it."""
    document: dict[str, Any] = create_app(settings, Database(settings, engine=engine)).openapi()
    return document


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


#: What a client made by `make_account` starts with (activating a job commits its budget to
#: escrow, so tests that are not about money need funded clients); `funded=False` for none.
TEST_CLIENT_BALANCE_MICROS = 1_000_000 * 1_000_000


@pytest.fixture
def make_account(db: Database) -> Callable[..., Account]:
    """Create a user with a token (no password: argon2 is slow and most tests need none).
    Clients start with TEST_CLIENT_BALANCE_MICROS available unless `funded=False`."""
    counter = iter(range(1, 1_000_000))

    def make(
        role: Role | str = Role.annotator,
        *,
        email: str | None = None,
        password: str | None = None,
        funded: bool = True,
        **_: Any,
    ) -> Account:
        role = Role(role)
        email = email or f"{role.value}{next(counter)}-{uuid.uuid4().hex[:6]}@example.com"
        with db.transaction() as session:
            user = accounts.create_user(
                session, email=email, display_name=email.split("@")[0], role=role, password=password
            )
            issued = accounts.issue_token(session, user, "test")
            if role is Role.client and funded:
                funding.credit_manually(
                    session, user.id, TEST_CLIENT_BALANCE_MICROS, actor_id=None, reason="test"
                )
        return Account(user=user, token=issued.secret)

    return make


@pytest.fixture
def admin(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.admin)


@pytest.fixture
def client_account(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.client)


@pytest.fixture
def annotator(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.annotator)
