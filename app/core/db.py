"""Engine and sessions.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout, and begins
write transactions with `BEGIN IMMEDIATE` so concurrent writers queue on the busy timeout instead of
failing with "database is locked" at commit. We switch off pysqlite's own transaction handling and
emit BEGIN from SQLAlchemy's `begin` event, as the SQLAlchemy pysqlite dialect docs describe.
Read-only sessions begin with a plain (deferred) BEGIN so readers never wait for writers.

PostgreSQL goes through psycopg 3 with a sized pool. On PostgreSQL the service also opens an
async psycopg pool (`open_async_pool`, from the app's lifespan) for the annotator's hot
path, which runs raw SQL on the event loop instead of ORM sessions on threads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from app.core.settings import Settings

READ_ONLY = "tessera_read_only"
SETTINGS = "tessera_settings"


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

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        # Files attached by `attach_sqlite_file` go with the transaction that used them (SQLite
        # refuses DETACH inside it): the pool's reset has ended it by now.
        if not _detach(dbapi_connection, record.info):
            record.invalidate()

    return engine


ATTACHED = "tessera_attached"


def attach_sqlite_file(connection: Connection, path: Path, prefix: str) -> str:
    """Attach the SQLite file `path` to the connection, inside its transaction (so one statement
    can copy from it), and return the alias to name it by in SQL (`prefix` and a number). It is
    detached when the connection goes back to the pool; until then a file attached again keeps
    its alias, and another file gets a new one (SQLite will not detach a file the open
    transaction has read). `prefix` is a plain identifier of ours, never input."""
    if not prefix.isidentifier():
        raise ValueError(f"not an SQL identifier: {prefix!r}")
    attached: dict[str, str] = connection.connection.info.setdefault(ATTACHED, {})
    alias = attached.get(str(path))
    if alias is None:
        alias = f"{prefix}_{len(attached)}"
        driver: Any = connection.connection.driver_connection
        driver.execute(f"ATTACH DATABASE ? AS {alias}", (str(path),))
        attached[str(path)] = alias
    return alias


def detach_sqlite_files(connection: Connection) -> None:
    """Detach what `attach_sqlite_file` attached, outside any transaction (the pool does this
    when a connection goes back; a caller holding one connection for long calls it)."""
    if not _detach(connection.connection.driver_connection, connection.connection.info):
        raise RuntimeError("could not detach the files attached to this connection")


def _detach(driver: Any, info: dict[Any, Any]) -> bool:
    for alias in info.pop(ATTACHED, {}).values():
        try:
            driver.execute(f"DETACH DATABASE {alias}")
        except Exception:
            return False
    return True


def _sha256_hex(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


class Database:
    """The engine plus session factories; one per process (kept on `app.state.db`).

    Given `connection` (a connection of `engine` inside a transaction its caller owns), every
    session works inside that transaction instead of beginning its own: a session that may
    write is a SAVEPOINT (its commit releases it, its rollback returns to it), a read session
    joins without one. Nothing reaches the database until the caller commits; the test suite
    rolls each test back this way (`tests/harness.py`)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        *,
        connection: Connection | None = None,
    ) -> None:
        self.settings = settings
        self.engine = (
            connection.engine if connection is not None else engine or create_db_engine(settings)
        )
        self.connection = connection
        # Sessions carry the settings they were opened under, for services whose callers
        # have no settings of their own to pass (`session_settings`).
        writes: dict[str, Any] = {SETTINGS: settings}
        reads: dict[str, Any] = {SETTINGS: settings, READ_ONLY: True}
        if connection is None:
            self._sessions = sessionmaker(self.engine, expire_on_commit=False, info=writes)
            self._read_sessions = sessionmaker(
                self.engine.execution_options(**{READ_ONLY: True}),
                expire_on_commit=False,
                info=reads,
            )
        else:
            self._sessions = sessionmaker(
                connection,
                expire_on_commit=False,
                info=writes,
                join_transaction_mode="create_savepoint",
            )
            # Reads take no savepoint: a read session outlives the writes it wraps (the token
            # check of a read request commits a write of its own), and rolling back to a
            # savepoint taken before them would undo them.
            self._read_sessions = sessionmaker(
                connection,
                expire_on_commit=False,
                info=reads,
                join_transaction_mode="rollback_only",
            )

    def with_settings(self, settings: Settings) -> Database:
        """The same engine (and connection, if bound), its sessions carrying `settings`."""
        if self.connection is not None:
            return type(self)(settings, connection=self.connection)
        return type(self)(settings, engine=self.engine)

    async def open_async_pool(self) -> AsyncPool | None:
        """The hot path's async pool on PostgreSQL (`open_async_pool`); None on SQLite."""
        return await open_async_pool(self.settings)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A session for a unit of work that may write. The caller commits."""
        return self._sessions()

    def read_session(self) -> Session:
        """A session that only reads (on SQLite it does not take the write lock)."""
        return self._read_sessions()

    def snapshot_session(self) -> Session:
        """A read session whose statements all see one snapshot: REPEATABLE READ on PostgreSQL
        (SQLite's read transaction is one already). Bound to a caller's transaction, it reads
        in that one."""
        session = self.read_session()
        if self.dialect == "postgresql" and self.connection is None:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return session

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
        if self.connection is None:  # a bound database's engine belongs to its caller
            self.engine.dispose()


def is_read_only(session: Session) -> bool:
    """Whether `session` came from `Database.read_session`."""
    return bool(session.info.get(READ_ONLY))


def session_settings(session: Session) -> Settings:
    """The settings of the `Database` a session was opened from."""
    settings = session.info.get(SETTINGS)
    if not isinstance(settings, Settings):
        raise RuntimeError("this session was not opened by app.core.db.Database")
    return settings


AsyncPool = AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]]


async def open_async_pool(settings: Settings) -> AsyncPool | None:
    """The async pool of the hot path on PostgreSQL (None on SQLite, which runs it on threads).
    It is bound to the event loop that opens it, so each app opens its own in its lifespan.
    It starts with one connection and grows to the sync pool's size plus overflow. Its
    connections autocommit: a hot-path call that needs a transaction opens one
    (`conn.transaction()`), so a single-statement call costs no BEGIN and COMMIT."""
    if settings.is_sqlite:
        return None
    url = make_url(settings.database_url).set(drivername="postgresql")
    pool: AsyncPool = AsyncConnectionPool(
        url.render_as_string(hide_password=False),
        min_size=1,
        max_size=settings.db_pool_size + settings.db_max_overflow,
        kwargs={"options": "-c TimeZone=UTC", "autocommit": True},
        configure=_configure_async,
        open=False,
        name="hot-path",
    )
    await pool.open()
    return pool


async def _configure_async(conn: AsyncConnection[tuple[Any, ...]]) -> None:
    set_json_loads(orjson.loads, conn)
    set_json_dumps(orjson.dumps, conn)


# --- a forgotten commit cannot hide ------------------------------------------------------------

UNFINISHED_WRITES = "tessera.unfinished_writes"


class UncommittedWork(RuntimeError):
    """A unit of work wrote and then ended without a commit or a rollback: a bug (its writes
    would vanish silently when the session closes)."""


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: object) -> None:
    session.info[UNFINISHED_WRITES] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[UNFINISHED_WRITES] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _finished(session: Session) -> None:
    session.info.pop(UNFINISHED_WRITES, None)


def check_finished(session: Session) -> None:
    """Raise `UncommittedWork` when the session wrote since its last commit or rollback. Called
    where a unit of work ends normally (the request's session after its endpoint returned)."""
    if session.info.get(UNFINISHED_WRITES) or session.new or session.dirty or session.deleted:
        raise UncommittedWork(
            "The unit of work wrote without committing or rolling back: its changes would be "
            "lost. Commit once where the unit of work ends (the endpoint or the actor)."
        )


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (`Session.execute` is typed as returning a plain
    `Result`, but for those statements it is a `CursorResult`)."""
    return int(cast("CursorResult[Any]", result).rowcount)
