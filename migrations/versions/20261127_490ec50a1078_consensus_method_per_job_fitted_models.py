"""consensus: method per job, fitted models

Revision ID: 490ec50a1078
Revises: 3b7e51c0d9a2
Create Date: 2026-11-27 06:58:03.502301
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = "490ec50a1078"
down_revision: str | None = "3b7e51c0d9a2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consensus_fits",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "model",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("fitted_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_consensus_fits_job_id_jobs")
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_consensus_fits")),
    )
    # Jobs made before this revision keep the majority vote they were created with; new jobs
    # get the application's default (calibrated Dawid-Skene), so no default stays in the schema.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "consensus_method",
                sa.String(length=40),
                nullable=False,
                server_default="majority_vote",
            )
        )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("consensus_method", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("consensus_method")
    op.drop_table("consensus_fits")
