"""quality: review decisions, appeals, annotator stats, reputation and overrides, rule actions,
rule counters, per-job quality settings

Self-contained: new tables only (referring to users, jobs, assignments and job_bans).

Revision ID: 1a1f67d095e7
Revises: 6f6afeda1470
Create Date: 2026-11-27 06:50:13.213453
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = "1a1f67d095e7"
down_revision: str | None = "6f6afeda1470"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "annotator_reputations",
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("reputation", sa.Float(), nullable=False),
        sa.Column(
            "tier",
            sa.Enum(
                "entry",
                "mid",
                "expert",
                name="tier",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("volume", sa.Integer(), nullable=False),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("computed_through", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("computed_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reputation >= 0 AND reputation <= 1", name=op.f("ck_annotator_reputations_reputation")
        ),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_annotator_reputations_annotator_id_users")
        ),
        sa.PrimaryKeyConstraint("annotator_id", name=op.f("pk_annotator_reputations")),
    )
    op.create_table(
        "annotator_stats",
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "scope",
            sa.Enum(
                "overall",
                "job",
                "skill",
                name="stats_scope",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("scope_key", sa.String(length=80), nullable=False),
        sa.Column("tasks", sa.Integer(), nullable=False),
        sa.Column("gold_answers", sa.Integer(), nullable=False),
        sa.Column("gold_accuracy", sa.Float(), nullable=True),
        sa.Column("consensus_answers", sa.Integer(), nullable=False),
        sa.Column("agreement", sa.Float(), nullable=True),
        sa.Column("approved", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("approval_rate", sa.Float(), nullable=True),
        sa.Column("median_active_seconds", sa.Float(), nullable=True),
        sa.Column("timed_tasks", sa.Integer(), nullable=False),
        sa.Column("fast_submits", sa.Integer(), nullable=False),
        sa.Column("fast_share", sa.Float(), nullable=True),
        sa.Column("longest_identical_run", sa.Integer(), nullable=False),
        sa.Column("reputation", sa.Float(), nullable=False),
        sa.Column("last_active_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("computed_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_annotator_stats_annotator_id_users")
        ),
        sa.PrimaryKeyConstraint(
            "annotator_id", "scope", "scope_key", name=op.f("pk_annotator_stats")
        ),
    )
    with op.batch_alter_table("annotator_stats", schema=None) as batch_op:
        batch_op.create_index(
            "ix_annotator_stats_scope_scope_key", ["scope", "scope_key"], unique=False
        )

    op.create_table(
        "reputation_overrides",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "tier",
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
        sa.Column("reputation", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "cleared_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.CheckConstraint(
            "reputation IS NULL OR (reputation >= 0 AND reputation <= 1)",
            name=op.f("ck_reputation_overrides_rep"),
        ),
        sa.CheckConstraint(
            "tier IS NOT NULL OR reputation IS NOT NULL",
            name=op.f("ck_reputation_overrides_something"),
        ),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_reputation_overrides_annotator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["cleared_by_id"],
            ["users.id"],
            name=op.f("fk_reputation_overrides_cleared_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_reputation_overrides_created_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reputation_overrides")),
    )
    with op.batch_alter_table("reputation_overrides", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reputation_overrides_annotator_id"), ["annotator_id"], unique=False
        )

    op.create_table(
        "job_quality_settings",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("speed_floor_seconds", sa.Float(), nullable=True),
        sa.Column("removal_gold_accuracy", sa.Float(), nullable=True),
        sa.Column("removal_min_gold_answers", sa.Integer(), nullable=True),
        sa.Column("identical_run_length", sa.Integer(), nullable=True),
        sa.Column("derived_floor_seconds", sa.Float(), nullable=True),
        sa.Column("derived_from_submits", sa.Integer(), nullable=False),
        sa.Column("derived_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_quality_settings_job_id_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_job_quality_settings_updated_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_quality_settings")),
    )
    op.create_table(
        "quality_rule_counters",
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("gold_answers", sa.Integer(), nullable=False),
        sa.Column("gold_score_sum", sa.Float(), nullable=False),
        sa.Column("run_key", sa.String(length=64), nullable=True),
        sa.Column("run_length", sa.Integer(), nullable=False),
        sa.Column("last_answer_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_quality_rule_counters_annotator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_quality_rule_counters_job_id_jobs")
        ),
        sa.PrimaryKeyConstraint("annotator_id", "job_id", name=op.f("pk_quality_rule_counters")),
    )
    op.create_table(
        "appeals",
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
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "kind",
            sa.Enum(
                "rejection",
                "gold",
                name="appeal_kind",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "upheld",
                "overturned",
                name="appeal_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "resolved_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("gold_score_before", sa.Float(), nullable=True),
        sa.Column("gold_score_after", sa.Float(), nullable=True),
        sa.Column(
            "original_scores",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_appeals_annotator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"], ["assignments.id"], name=op.f("fk_appeals_assignment_id_assignments")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_appeals_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["users.id"], name=op.f("fk_appeals_resolved_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
        sa.UniqueConstraint("assignment_id", "kind", name=op.f("uq_appeals_assignment_id_kind")),
    )
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appeals_annotator_id"), ["annotator_id"], unique=False)
        batch_op.create_index("ix_appeals_status_id", ["status", "id"], unique=False)

    op.create_table(
        "quality_actions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "assignment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "rule",
            sa.Enum(
                "gold_accuracy",
                "fast_submit",
                "identical_answers",
                "repeated_removals",
                name="quality_rule",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "kind",
            sa.Enum(
                "removal",
                "flag",
                "suspension_proposal",
                name="action_kind",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "confirmed",
                "reversed",
                name="action_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "thresholds",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "numbers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("ban_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "resolved_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_quality_actions_annotator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_quality_actions_assignment_id_assignments"),
        ),
        sa.ForeignKeyConstraint(
            ["ban_id"], ["job_bans.id"], name=op.f("fk_quality_actions_ban_id_job_bans")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_quality_actions_job_id_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["users.id"], name=op.f("fk_quality_actions_resolved_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_actions")),
        sa.UniqueConstraint(
            "rule", "assignment_id", name=op.f("uq_quality_actions_rule_assignment_id")
        ),
    )
    with op.batch_alter_table("quality_actions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quality_actions_annotator_id_id", ["annotator_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_quality_actions_status_kind_id", ["status", "kind", "id"], unique=False
        )

    op.create_table(
        "review_decisions",
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
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "old_status",
            sa.Enum(
                "active",
                "submitted",
                "approved",
                "rejected",
                "expired",
                "released",
                name="old_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "new_status",
            sa.Enum(
                "active",
                "submitted",
                "approved",
                "rejected",
                "expired",
                "released",
                name="new_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "client",
                "auto",
                "appeal",
                name="review_source",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_review_decisions_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_review_decisions_annotator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_review_decisions_assignment_id_assignments"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_review_decisions_job_id_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_decisions")),
    )
    with op.batch_alter_table("review_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_review_decisions_annotator_id_id", ["annotator_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_review_decisions_assignment_id"), ["assignment_id"], unique=False
        )
        batch_op.create_index("ix_review_decisions_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("review_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_review_decisions_created_at")
        batch_op.drop_index(batch_op.f("ix_review_decisions_assignment_id"))
        batch_op.drop_index("ix_review_decisions_annotator_id_id")

    op.drop_table("review_decisions")
    with op.batch_alter_table("quality_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_actions_status_kind_id")
        batch_op.drop_index("ix_quality_actions_annotator_id_id")

    op.drop_table("quality_actions")
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index("ix_appeals_status_id")
        batch_op.drop_index(batch_op.f("ix_appeals_annotator_id"))

    op.drop_table("appeals")
    op.drop_table("quality_rule_counters")
    op.drop_table("job_quality_settings")
    with op.batch_alter_table("reputation_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reputation_overrides_annotator_id"))

    op.drop_table("reputation_overrides")
    with op.batch_alter_table("annotator_stats", schema=None) as batch_op:
        batch_op.drop_index("ix_annotator_stats_scope_scope_key")

    op.drop_table("annotator_stats")
    op.drop_table("annotator_reputations")
