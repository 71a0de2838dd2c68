"""jobs: auto_complete and show_prelabels

`auto_complete`: a job completes by itself once every task is complete (on by default, for
existing jobs too). `show_prelabels`: annotators are shown each item's pre-label (off by
default).

Revision ID: 9d3e6a1f2b70
Revises: 9d3e1f7a2b60
Create Date: 2026-12-07 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d3e6a1f2b70"
down_revision: str | None = "9d3e1f7a2b60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("auto_complete", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("show_prelabels", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("show_prelabels")
        batch.drop_column("auto_complete")
