"""How each test gets its database: inside one transaction rolled back at its end (the default),
or on the real engine, committing for real and emptied afterwards (tests marked `commits`).

Rolled back: the test's `Database` is bound to one connection in an open transaction
(`Database(settings, connection=...)`): every session that may write is a SAVEPOINT, every read
session joins the transaction. On PostgreSQL the annotators' hot path runs raw SQL on an async
psycopg pool of its own; here it runs the same statements on the test's connection through
`SharedConnectionPool`, an async face over that one (sync) psycopg connection, so its writes roll
back with the rest. A statement it runs outside a transaction of its own gets a savepoint, as
the pool's autocommit connections would keep a failed statement from spoiling the next one.

Tests whose subject is the commit itself run on the real engine instead: threads or processes
that must see each other's writes (concurrency, locking, crash tests), background workers on
threads of their own, several engines. Mark them `@pytest.mark.commits` (or a module with
`pytestmark`); they pay for emptying the tables afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from app.core import caches
from app.core.db import Database, detach_sqlite_files
from app.core.settings import Settings
from app.models import Base


class RolledBackDatabase(Database):
    """A `Database` inside the test's transaction, hot path included."""

    async def open_async_pool(self) -> Any:
        if self.dialect != "postgresql":
            return None
        assert self.connection is not None
        return SharedConnectionPool(self.connection)


class SharedConnectionPool:
    """What `PgWorkplace` needs of an `AsyncConnectionPool`, lending the test's connection."""

    def __init__(self, bound: Connection) -> None:
        self.bound = bound

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncFace]:
        driver = self.bound.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        yield AsyncFace(driver)

    async def close(self) -> None:
        return None


class AsyncFace:
    """The async psycopg calls the hot path makes, run on a sync psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.depth = 0  # transaction blocks open on this face

    async def execute(self, query: Any, params: Any = None) -> AsyncCursorFace:
        cursor = self.cursor()
        await cursor.execute(query, params)
        return cursor

    def cursor(self, *, row_factory: Any = None) -> AsyncCursorFace:
        cursor = self.conn.cursor(row_factory=row_factory) if row_factory else self.conn.cursor()
        # The engine's connections leave JSON to SQLAlchemy; the hot path's pool decodes it.
        set_json_loads(orjson.loads, cursor)
        set_json_dumps(orjson.dumps, cursor)
        return AsyncCursorFace(self, cursor)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        with self.conn.transaction():  # a SAVEPOINT: the test's transaction is open
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1


class AsyncCursorFace:
    def __init__(self, face: AsyncFace, cursor: psycopg.Cursor[Any]) -> None:
        self.face = face
        self.cursor = cursor

    async def execute(self, query: Any, params: Any = None) -> AsyncCursorFace:
        if self.face.depth:
            self.cursor.execute(query, params)
        else:
            with self.face.conn.transaction():
                self.cursor.execute(query, params)
        return self

    async def fetchone(self) -> Any:
        return self.cursor.fetchone()

    async def fetchall(self) -> list[Any]:
        return self.cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount


@contextmanager
def rolled_back(engine: Engine, settings: Settings) -> Iterator[RolledBackDatabase]:
    """A database whose every write is rolled back when the block ends."""
    connection = engine.connect()
    outer = connection.begin()
    try:
        yield RolledBackDatabase(settings, connection=connection)
    finally:
        if outer.is_active:
            outer.rollback()
        connection.close()


TABLES = [t.name for t in reversed(Base.metadata.sorted_tables)]


def empty_tables(engine: Engine, tables: Sequence[str] = TABLES) -> None:
    """Delete every row of the tables that have any (children first); ids go on from where they
    were. Cheaper than TRUNCATE on PostgreSQL, which takes a lock and new files per table."""
    with engine.begin() as conn:
        probe = " UNION ALL ".join(
            f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in tables
        )
        used = {row[0] for row in conn.execute(text(probe))}
        for name in tables:
            if name in used:
                conn.execute(text(f"DELETE FROM {name}"))


class Restart:
    """Take a rolled-back database back to where the test began (property tests whose every
    example starts afresh), as often as asked."""

    def __init__(self, db: Database) -> None:
        assert db.connection is not None, "Restart needs a rolled-back database"
        self.connection = db.connection

    def __call__(self) -> None:
        root = self.connection.get_transaction()
        if root is not None:
            root.rollback()
        # Out of any transaction, SQLite lets the staged files of earlier imports go (it
        # refuses DETACH inside one, and holds at most 10).
        detach_sqlite_files(self.connection)
        caches.clear_all()  # ids are handed out again
        self.connection.begin()


@contextmanager
def undone(db: Database) -> Iterator[None]:
    """What the block writes in a rolled-back database is undone when it ends."""
    assert db.connection is not None, "undone needs a rolled-back database"
    savepoint = db.connection.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()
        caches.clear_all()


def require_commits(db: Database, why: str) -> None:
    """Fail at once, saying what to do, when `db` is a rolled-back one but the test needs
    committed data (another thread or process would see nothing, or fight over the one
    connection)."""
    if db.connection is not None:
        raise AssertionError(f"{why}: mark the test @pytest.mark.commits")
