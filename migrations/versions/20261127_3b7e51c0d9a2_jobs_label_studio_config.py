"""jobs: the Label Studio config a job was created from

A job created from a Label Studio XML config keeps the config as sent, so its exports name the
config's own tags and objects and the client can download it again to make a project from it.

Revision ID: 3b7e51c0d9a2
Revises: b1ba286fb074
Create Date: 2026-11-24 10:12:31.402118
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b7e51c0d9a2"
down_revision: str | None = "b1ba286fb074"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("label_studio_config", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("label_studio_config")
