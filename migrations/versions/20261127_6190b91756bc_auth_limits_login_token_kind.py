"""accounts: abuse limits on login and signup, and the kind of each API token

`auth_limits` counts recent login and signup attempts per account and per client address (in the
database, so every API process counts together). `api_tokens.kind` tells tokens minted by login
or signup (which expire and are capped per user) from tokens made on purpose; existing tokens
are `api` tokens, so none of them starts to expire.

Revision ID: 6190b91756bc
Revises: 7c41d0e9b8a3
Create Date: 2026-11-27 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "6190b91756bc"
down_revision: str | None = "7c41d0e9b8a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_limits",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("window_started_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auth_limits")),
    )
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column(
                "kind",
                sa.Enum(
                    "api",
                    "login",
                    name="token_kind",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                server_default="api",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint(op.f("ck_api_tokens_token_kind"), type_="check")
        batch.drop_column("kind")
    op.drop_table("auth_limits")
