"""Engine and sessions.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout, and begins
write transactions with `BEGIN IMMEDIATE` so concurrent writers queue on the busy timeout instead of
failing with "database is locked" at commit. We switch off pysqlite's own transaction handling and
emit BEGIN from SQLAlchemy's `begin` event, as the SQLAlchemy pysqlite dialect docs describe.
Read-only sessions begin with a plain (deferred) BEGIN so readers never wait for writers.

PostgreSQL goes through psycopg 3 with a sized pool.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.core.settings import Settings

READ_ONLY = "tessera_read_only"


def create_db_engine(settings: Settings, **kwargs: Any) -> Engine:
    """An engine configured for the database in `settings`."""
    if settings.is_sqlite:
        return _sqlite_engine(settings, **kwargs)
    return create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        **kwargs,
    )


def _sqlite_engine(settings: Settings, **kwargs: Any) -> Engine:
    path = settings.sqlite_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database_url, **kwargs)
    busy_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQL-side pseudonyms in exports (PostgreSQL has sha256() built in).
        dbapi_connection.create_function("sha256_hex", 1, _sha256_hex, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _sha256_hex(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


class Database:
    """The engine plus session factories; one per process (kept on `app.state.db`)."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or create_db_engine(settings)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A session for a unit of work that may write. The caller commits."""
        return self._sessions()

    def read_session(self) -> Session:
        """A session that only reads (on SQLite it does not take the write lock)."""
        return self._read_sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error."""
        with self.session() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (`Session.execute` is typed as returning a plain
    `Result`, but for those statements it is a `CursorResult`)."""
    return int(cast("CursorResult[Any]", result).rowcount)
