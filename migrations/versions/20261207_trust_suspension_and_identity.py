"""trust: why a job is paused

`jobs.pause_reason`: who or what paused a job (`paused_by_client`, `paused_by_admin`,
`client_suspended`; null for a job that is not paused, or is paused for money, whose reason is
its budget's). A job paused because its client was suspended resumes by an admin only.

Revision ID: 9d3e1f7a2b60
Revises: 9e4b2c71d5a8
Create Date: 2026-12-07 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d3e1f7a2b60"
down_revision: str | None = "9e4b2c71d5a8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("pause_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("pause_reason")
