"""assignments: earnings posted by a batch poster, off the submit hot path

Submit no longer writes the ledger; `earning_posted_at` marks work whose earning the poster (or
an approval or rejection) has written, and a partial index holds the rest as the poster's queue.
Work submitted before this revision had its earning posted at submit: it is marked so.

Revision ID: 7c41d0e9b8a3
Revises: 1a1f67d095e7
Create Date: 2026-11-27 09:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UTCDateTime

revision: str = "7c41d0e9b8a3"
down_revision: str | None = "1a1f67d095e7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPOSTED = "submitted_at IS NOT NULL AND earning_posted_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("earning_posted_at", UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE assignments SET earning_posted_at = submitted_at")
    op.create_index(
        "ix_assignments_unposted",
        "assignments",
        ["id"],
        postgresql_where=sa.text(UNPOSTED),
        sqlite_where=sa.text(UNPOSTED),
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_unposted", table_name="assignments")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("earning_posted_at")
