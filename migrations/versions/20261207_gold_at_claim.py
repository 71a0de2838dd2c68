"""assignments: gold chosen at claim time

Jobs split from now on hold regular items only; the claim adds at most one unseen gold item of
the job to an assignment (`gold_item_id`) at a random position among its items (`gold_slot`).
Tasks split before keep their gold in `task_items` (`tasks.has_gold`) and route as before.

Revision ID: 9e4d2c7a1f60
Revises: 7a3e91c5d2f0
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import BigId

revision: str = "9e4d2c7a1f60"
down_revision: str | None = "7a3e91c5d2f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("gold_item_id", BigId, nullable=True))
        batch.add_column(sa.Column("gold_slot", sa.SmallInteger(), nullable=True))
        batch.create_foreign_key(
            "fk_assignments_gold_item_id_items", "items", ["gold_item_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_constraint("fk_assignments_gold_item_id_items", type_="foreignkey")
        batch.drop_column("gold_slot")
        batch.drop_column("gold_item_id")
