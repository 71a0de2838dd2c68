"""payouts: an annotator's own payout threshold and payout destination

Annotators may choose a payout threshold above the platform's minimum (a batch pays them only
once their available balance reaches it) and register where the manual provider pays them
(method and details, stored encrypted, shown masked).

Revision ID: 7a3e91c5d2f0
Revises: 9d3e6a1f2b70
Create Date: 2026-12-07 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "7a3e91c5d2f0"
down_revision: str | None = "9d3e6a1f2b70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payout_preferences",
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("minimum_micros", sa.BigInteger(), nullable=True),
        sa.Column("destination_method", sa.String(length=40), nullable=True),
        sa.Column("destination_ciphertext", sa.Text(), nullable=True),
        sa.Column("destination_masked", sa.String(length=200), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_payout_preferences_annotator_id_users")
        ),
        sa.PrimaryKeyConstraint("annotator_id", name=op.f("pk_payout_preferences")),
    )


def downgrade() -> None:
    op.drop_table("payout_preferences")
