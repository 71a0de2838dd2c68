"""money (issue 22): one retry per failed payout; requests remembered by Idempotency-Key

A unique index on `payouts.retry_of_id` (NULLs aside) backs the check made under the failed
payout's lock: a failed payout is retried once, ever. `idempotent_requests` (owned by
`app.core.idempotency`) keeps money requests' responses by caller and key for 24 hours.

Revision ID: 9e4b2c71d5a8
Revises: 5c0d7e2a9b41
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UTCDateTime

revision: str = "9e4b2c71d5a8"
down_revision: str | None = "5c0d7e2a9b41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("uq_payouts_retry_of_id", "payouts", ["retry_of_id"], unique=True)
    op.create_table(
        "idempotent_requests",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column(
            "principal_id",
            BIG_ID,
            sa.ForeignKey(
                "users.id",
                ondelete="CASCADE",
                name=op.f("fk_idempotent_requests_principal_id_users"),
            ),
            nullable=False,
        ),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotent_requests")),
    )
    op.create_index(
        "uq_idempotent_requests_principal_key",
        "idempotent_requests",
        ["principal_id", "key"],
        unique=True,
    )
    op.create_index("ix_idempotent_requests_created_at", "idempotent_requests", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotent_requests_created_at", table_name="idempotent_requests")
    op.drop_index("uq_idempotent_requests_principal_key", table_name="idempotent_requests")
    op.drop_table("idempotent_requests")
    op.drop_index("uq_payouts_retry_of_id", table_name="payouts")
