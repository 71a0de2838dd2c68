"""money (issue 22): one retry per failed payout

A unique index on `payouts.retry_of_id` (NULLs aside) backs the check made under the failed
payout's lock: a failed payout is retried once, ever.

Revision ID: 9e4b2c71d5a8
Revises: 5c0d7e2a9b41
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9e4b2c71d5a8"
down_revision: str | None = "5c0d7e2a9b41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("uq_payouts_retry_of_id", "payouts", ["retry_of_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_payouts_retry_of_id", table_name="payouts")
