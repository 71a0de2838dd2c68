"""jobs, items, tasks, assignments, answers, item results

Revision ID: 8c2595e108a0
Revises: b2a17c0927c1
Create Date: 2026-11-23 15:48:29.995528
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = "8c2595e108a0"
down_revision: str | None = "b2a17c0927c1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column(
            "label_schema",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "active",
                "paused",
                "completed",
                "cancelled",
                name="job_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "pricing_mode",
            sa.Enum(
                "per_task",
                "hourly",
                name="pricing_mode",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("rate_micros", sa.BigInteger(), nullable=False),
        sa.Column("overlap_min", sa.Integer(), nullable=False),
        sa.Column("overlap_max", sa.Integer(), nullable=False),
        sa.Column("items_per_task", sa.Integer(), nullable=False),
        sa.Column("gold_ratio", sa.Float(), nullable=False),
        sa.Column(
            "required_skills",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("min_reputation", sa.Float(), nullable=True),
        sa.Column(
            "min_tier",
            sa.Enum(
                "entry",
                "mid",
                "expert",
                name="tier",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column("lease_seconds", sa.Integer(), nullable=False),
        sa.Column("max_tasks_per_annotator", sa.Integer(), nullable=True),
        sa.Column("deadline", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("confidence_threshold", sa.Float(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column(
            "task_order",
            sa.Enum(
                "near_completion",
                "upload_order",
                "uncertainty",
                name="task_order",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("instant_feedback", sa.Boolean(), nullable=False),
        sa.Column("split_watermark", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("activated_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            app.models.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint("gold_ratio >= 0 AND gold_ratio < 1", name=op.f("ck_jobs_gold_ratio")),
        sa.CheckConstraint("items_per_task >= 1", name=op.f("ck_jobs_items_per_task")),
        sa.CheckConstraint(
            "overlap_min >= 1 AND overlap_max >= overlap_min", name=op.f("ck_jobs_overlap")
        ),
        sa.CheckConstraint("rate_micros >= 0", name=op.f("ck_jobs_rate")),
        sa.ForeignKeyConstraint(["client_id"], ["users.id"], name=op.f("fk_jobs_client_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_status"), ["status"], unique=False)

    op.create_table(
        "items",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("is_gold", sa.Boolean(), nullable=False),
        sa.Column(
            "gold_answer",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "prelabel",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("prelabel_score", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_items_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("job_id", "external_id", name=op.f("uq_items_job_id_external_id")),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_items_job_id_is_gold_id", ["job_id", "is_gold", "id"], unique=False
        )

    op.create_table(
        "tasks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "full",
                "complete",
                "cancelled",
                name="task_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("order_key", sa.Float(), nullable=False),
        sa.Column("overlap_target", sa.Integer(), nullable=False),
        sa.Column("live_count", sa.Integer(), nullable=False),
        sa.Column("done_count", sa.Integer(), nullable=False),
        sa.Column("has_gold", sa.Boolean(), nullable=False),
        sa.Column("completed_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            app.models.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint("live_count >= 0 AND done_count >= 0", name=op.f("ck_tasks_counts")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_tasks_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_job_id_status", ["job_id", "status"], unique=False)
        batch_op.create_index(
            "ix_tasks_claimable",
            ["job_id", "order_key", "id"],
            unique=False,
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "assignments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "submitted",
                "approved",
                "rejected",
                "expired",
                "released",
                name="assignment_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("claimed_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("active_seconds", sa.Integer(), nullable=False),
        sa.Column("gold_score", sa.Float(), nullable=True),
        sa.Column("release_reason", sa.String(length=500), nullable=True),
        sa.Column("answers_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_assignments_annotator_id_users")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_assignments_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_assignments_task_id_tasks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
        sa.UniqueConstraint(
            "task_id", "annotator_id", name=op.f("uq_assignments_task_id_annotator_id")
        ),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assignments_annotator_id_status", ["annotator_id", "status"], unique=False
        )
        batch_op.create_index("ix_assignments_job_id_status", ["job_id", "status"], unique=False)
        batch_op.create_index(
            "ix_assignments_live_lease",
            ["lease_expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "item_results",
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "answer",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("answer_count", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_results_item_id_items")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_item_results_job_id_jobs")),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_results")),
    )
    with op.batch_alter_table("item_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_item_results_job_id"), ["job_id"], unique=False)

    op.create_table(
        "task_items",
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_task_items_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_items_task_id_tasks")
        ),
        sa.PrimaryKeyConstraint("task_id", "position", name=op.f("pk_task_items")),
    )
    with op.batch_alter_table("task_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_items_item_id"), ["item_id"], unique=False)

    op.create_table(
        "answers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "assignment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_answers_annotator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"], ["assignments.id"], name=op.f("fk_answers_assignment_id_assignments")
        ),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_answers_item_id_items")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_answers_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
    )
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_answers_assignment_id"), ["assignment_id"], unique=False
        )
        batch_op.create_index("ix_answers_item_id", ["item_id"], unique=False)
        batch_op.create_index(
            "ix_answers_job_id_created_at", ["job_id", "created_at"], unique=False
        )

    op.create_table(
        "gold_exposures",
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_gold_exposures_annotator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_gold_exposures_item_id_items")
        ),
        sa.PrimaryKeyConstraint("annotator_id", "item_id", name=op.f("pk_gold_exposures")),
    )
    if op.get_context().dialect.name == "postgresql":
        # The claim hot path updates tasks and assignments constantly: leave room on each page
        # for HOT updates, and vacuum and analyze them far more often than the defaults.
        for table in ("tasks", "assignments"):
            op.execute(
                f"ALTER TABLE {table} SET (fillfactor = 80, "
                "autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02)"
            )


def downgrade() -> None:
    op.drop_table("gold_exposures")

    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_index("ix_answers_job_id_created_at")
        batch_op.drop_index("ix_answers_item_id")
        batch_op.drop_index(batch_op.f("ix_answers_assignment_id"))

    op.drop_table("answers")
    with op.batch_alter_table("task_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_items_item_id"))

    op.drop_table("task_items")
    with op.batch_alter_table("item_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_results_job_id"))

    op.drop_table("item_results")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_live_lease")
        batch_op.drop_index("ix_assignments_job_id_status")
        batch_op.drop_index("ix_assignments_annotator_id_status")

    op.drop_table("assignments")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_claimable")
        batch_op.drop_index("ix_tasks_job_id_status")

    op.drop_table("tasks")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_job_id_is_gold_id")

    op.drop_table("items")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_status"))
        batch_op.drop_index(batch_op.f("ix_jobs_client_id"))

    op.drop_table("jobs")
