"""jobs: the declared external id field

A client can name the column or key of its dataset that is each row's external id, so re-uploads
of files that carry their own ids (a `sku`, an `image_id`) are idempotent without renaming it to
`external_id`.

Revision ID: 5c0d7e2a9b41
Revises: 6190b91756bc
Create Date: 2026-11-27 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c0d7e2a9b41"
down_revision: str | None = "6190b91756bc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("external_id_field", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("external_id_field")
