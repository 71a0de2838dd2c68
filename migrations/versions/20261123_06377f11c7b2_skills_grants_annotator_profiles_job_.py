"""skills, grants, annotator profiles, job bans, qualification tests and attempts

Revision ID: 06377f11c7b2
Revises: 8c2595e108a0
Create Date: 2026-11-23 16:10:23.743704
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = "06377f11c7b2"
down_revision: str | None = "8c2595e108a0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "skills",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("max_level", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            app.models.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint("max_level >= 1 AND max_level <= 10", name=op.f("ck_skills_max_level")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skills")),
        sa.UniqueConstraint("slug", name=op.f("uq_skills_slug")),
    )
    op.create_table(
        "annotator_profiles",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
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
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.CheckConstraint(
            "reputation >= 0 AND reputation <= 1", name=op.f("ck_annotator_profiles_reputation")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_annotator_profiles_updated_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_annotator_profiles_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_annotator_profiles")),
    )
    op.create_table(
        "qualification_tests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column(
            "label_schema",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("questions_per_attempt", sa.Integer(), nullable=False),
        sa.Column("time_limit_seconds", sa.Integer(), nullable=False),
        sa.Column("passing_score", sa.Float(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("retake_cooldown_seconds", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("skill_level", sa.Integer(), nullable=False),
        sa.Column("grant_valid_days", sa.Integer(), nullable=True),
        sa.Column("show_feedback", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            app.models.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "passing_score >= 0 AND passing_score <= 1",
            name=op.f("ck_qualification_tests_passing_score"),
        ),
        sa.CheckConstraint(
            "questions_per_attempt >= 1", name=op.f("ck_qualification_tests_questions_per_attempt")
        ),
        sa.CheckConstraint(
            "time_limit_seconds >= 1", name=op.f("ck_qualification_tests_time_limit")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["users.id"], name=op.f("fk_qualification_tests_client_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_qualification_tests_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["skill_id"], ["skills.id"], name=op.f("fk_qualification_tests_skill_id_skills")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qualification_tests")),
    )
    with op.batch_alter_table("qualification_tests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_qualification_tests_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_qualification_tests_skill_id"), ["skill_id"], unique=False
        )

    op.create_table(
        "job_bans",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("until", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("lifted_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "lifted_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "created_at",
            app.models.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_job_bans_annotator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_job_bans_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_bans_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["lifted_by_id"], ["users.id"], name=op.f("fk_job_bans_lifted_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_bans")),
    )
    with op.batch_alter_table("job_bans", schema=None) as batch_op:
        batch_op.create_index(
            "ix_job_bans_annotator_id_job_id", ["annotator_id", "job_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_job_bans_job_id"), ["job_id"], unique=False)

    op.create_table(
        "qualification_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("test_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "graded",
                name="attempt_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("started_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotator_id"],
            ["users.id"],
            name=op.f("fk_qualification_attempts_annotator_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["test_id"],
            ["qualification_tests.id"],
            name=op.f("fk_qualification_attempts_test_id_qualification_tests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qualification_attempts")),
    )
    with op.batch_alter_table("qualification_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_qualification_attempts_annotator_id", ["annotator_id"], unique=False
        )
        batch_op.create_index(
            "ix_qualification_attempts_test_id_annotator_id",
            ["test_id", "annotator_id"],
            unique=False,
        )
        batch_op.create_index(
            "uq_qualification_attempts_one_open",
            ["test_id", "annotator_id"],
            unique=True,
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "qualification_questions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("test_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "answer_key",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("retired_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("weight > 0", name=op.f("ck_qualification_questions_weight")),
        sa.ForeignKeyConstraint(
            ["test_id"],
            ["qualification_tests.id"],
            name=op.f("fk_qualification_questions_test_id_qualification_tests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qualification_questions")),
    )
    with op.batch_alter_table("qualification_questions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_qualification_questions_test_id"), ["test_id"], unique=False
        )

    op.create_table(
        "qualification_attempt_questions",
        sa.Column(
            "attempt_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "question_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "answer",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("score", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["qualification_attempts.id"],
            name=op.f("fk_qualification_attempt_questions_attempt_id_qualification_attempts"),
        ),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["qualification_questions.id"],
            name=op.f("fk_qualification_attempt_questions_question_id_qualification_questions"),
        ),
        sa.PrimaryKeyConstraint(
            "attempt_id", "position", name=op.f("pk_qualification_attempt_questions")
        ),
    )
    with op.batch_alter_table("qualification_attempt_questions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_qualification_attempt_questions_question_id"),
            ["question_id"],
            unique=False,
        )

    op.create_table(
        "skill_grants",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "annotator_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("skill_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "test",
                "admin",
                name="grant_source",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "attempt_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "granted_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("granted_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "revoked_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("level >= 1", name=op.f("ck_skill_grants_level")),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_skill_grants_annotator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["qualification_attempts.id"],
            name=op.f("fk_skill_grants_attempt_id_qualification_attempts"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["users.id"], name=op.f("fk_skill_grants_client_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["granted_by_id"], ["users.id"], name=op.f("fk_skill_grants_granted_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_id"], ["users.id"], name=op.f("fk_skill_grants_revoked_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["skill_id"], ["skills.id"], name=op.f("fk_skill_grants_skill_id_skills")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skill_grants")),
    )
    with op.batch_alter_table("skill_grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_skill_grants_annotator_id_skill_id", ["annotator_id", "skill_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_skill_grants_attempt_id"), ["attempt_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_skill_grants_skill_id"), ["skill_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("skill_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_skill_grants_skill_id"))
        batch_op.drop_index(batch_op.f("ix_skill_grants_attempt_id"))
        batch_op.drop_index("ix_skill_grants_annotator_id_skill_id")

    op.drop_table("skill_grants")
    with op.batch_alter_table("qualification_attempt_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qualification_attempt_questions_question_id"))

    op.drop_table("qualification_attempt_questions")
    with op.batch_alter_table("qualification_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qualification_questions_test_id"))

    op.drop_table("qualification_questions")
    with op.batch_alter_table("qualification_attempts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_qualification_attempts_one_open",
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        )
        batch_op.drop_index("ix_qualification_attempts_test_id_annotator_id")
        batch_op.drop_index("ix_qualification_attempts_annotator_id")

    op.drop_table("qualification_attempts")
    with op.batch_alter_table("job_bans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_bans_job_id"))
        batch_op.drop_index("ix_job_bans_annotator_id_job_id")

    op.drop_table("job_bans")
    with op.batch_alter_table("qualification_tests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qualification_tests_skill_id"))
        batch_op.drop_index(batch_op.f("ix_qualification_tests_client_id"))

    op.drop_table("qualification_tests")
    op.drop_table("annotator_profiles")
    op.drop_table("skills")
