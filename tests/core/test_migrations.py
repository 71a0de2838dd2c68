"""The Alembic migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app.core.db import Database
from app.models import Base
from migrations.schema import alembic_config, current_revision, head_revision

pytestmark = pytest.mark.commits  # migrations inspect and rebuild whole databases


def test_upgrade_head_matches_the_models(db: Database) -> None:
    assert current_revision(db.engine) == head_revision()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_back(tmp_path: Path, db: Database) -> None:
    # A throwaway SQLite database: the shared test database stays at head.
    from app.core.settings import Settings

    scratch = Database(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", _env_file=None))  # type: ignore[call-arg]
    cfg = alembic_config()
    try:
        with scratch.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            command.downgrade(cfg, "base")
            command.upgrade(cfg, "head")
        assert current_revision(scratch.engine) == head_revision()
    finally:
        scratch.dispose()


def test_finding_12_the_email_key_migration_backfills_and_keeps_colliding_accounts(
    tmp_path: Path,
) -> None:
    """Issue #22 finding 12: `users.email_key` is backfilled from the stored emails; of two
    accounts that are one address under NFKC (a fullwidth form registered beside the plain
    one, as the old rule let happen), the older keeps the key."""
    from sqlalchemy import text

    from app.core.settings import Settings

    scratch = Database(Settings(database_url=f"sqlite:///{tmp_path / 'e.db'}", _env_file=None))  # type: ignore[call-arg]
    cfg = alembic_config()
    emails = ["katee9ad@example.com", "\uff4batee9ad@example.com", "Other@example.com"]
    try:
        with scratch.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "5c0d7e2a9b41")
            for email in emails:
                conn.execute(
                    text(
                        "INSERT INTO users (email, display_name, role, status) "
                        "VALUES (:email, 'x', 'client', 'active')"
                    ),
                    {"email": email},
                )
            command.upgrade(cfg, "9d3e1f7a2b60")
            rows = conn.execute(text("SELECT id, email, email_key FROM users ORDER BY id")).all()
    finally:
        scratch.dispose()
    assert [(email, key) for _, email, key in rows] == [
        ("katee9ad@example.com", "katee9ad@example.com"),
        ("\uff4batee9ad@example.com", f"katee9ad@example.com#duplicate-of-{rows[0][0]}"),
        ("Other@example.com", "other@example.com"),
    ]
