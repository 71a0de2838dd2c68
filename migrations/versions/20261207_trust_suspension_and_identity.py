"""trust: why a job is paused; the identity of an email

`jobs.pause_reason`: who or what paused a job (`paused_by_client`, `paused_by_admin`,
`client_suspended`; null for a job that is not paused, or is paused for money, whose reason is
its budget's). A job paused because its client was suspended resumes by an admin only.

`users.email_key`: the address under NFKC and case folding (`app.accounts.emails.email_key`),
unique; `users.email` keeps what the user typed. Backfilled from `email` (stored lower-cased until
now). Two existing accounts whose addresses are one under the new rule (a fullwidth or otherwise
compatible form registered beside the plain one) cannot share the key: the older keeps it, each
later one gets `<key>#duplicate-of-<id>`, so it cannot sign in with a password until an admin
sorts the two out (its tokens keep working).

Revision ID: 9d3e1f7a2b60
Revises: 9e4b2c71d5a8
Create Date: 2026-12-07 23:00:00.000000
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d3e1f7a2b60"
down_revision: str | None = "9e4b2c71d5a8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _email_key(email: str) -> str:
    # app.accounts.emails.email_key as of this revision (a migration never imports the app)
    return unicodedata.normalize("NFKC", email.strip()).casefold()


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("pause_reason", sa.String(length=32), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_key", sa.String(length=320), nullable=True))
    users = sa.table(
        "users", sa.column("id", sa.BigInteger), sa.column("email"), sa.column("email_key")
    )
    bind = op.get_bind()
    owners: dict[str, int] = {}
    for user_id, email in bind.execute(sa.select(users.c.id, users.c.email).order_by(users.c.id)):
        key = _email_key(email)
        if key in owners:
            key = f"{key}#duplicate-of-{owners[key]}"
        else:
            owners[key] = user_id
        bind.execute(users.update().where(users.c.id == user_id).values(email_key=key))
    with op.batch_alter_table("users") as batch:
        batch.alter_column("email_key", existing_type=sa.String(length=320), nullable=False)
        batch.create_unique_constraint(op.f("uq_users_email_key"), ["email_key"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("uq_users_email_key"), type_="unique")
        batch.drop_column("email_key")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("pause_reason")
