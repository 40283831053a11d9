"""The schema as `Base.metadata.create_all` made it before migrations existed.

A database created by that code (all of these tables, no alembic_version table) is stamped at
this revision instead of being migrated.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The types frozen as they were at this revision, not imported from db.models, which moves on.
# SQLite auto-assigns ids only to a column declared exactly INTEGER PRIMARY KEY.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "generation_logs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("refiner", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("prompt_hash", sa.String(128), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("neighbours", sa.JSON(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("abstained", sa.Boolean(), nullable=False),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_generation_logs_created_at", "generation_logs", ["created_at"])
    op.create_index("ix_generation_logs_kind", "generation_logs", ["kind"])

    op.create_table(
        "index_builds",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("encoder_fingerprint", sa.String(128), nullable=False),
        sa.Column("factory", sa.String(256), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("data_source", sa.String(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("timings", sa.JSON(), nullable=False),
    )
    op.create_index("ix_index_builds_created_at", "index_builds", ["created_at"])
    # At most one active build: "WHERE active = true" on PostgreSQL, "= 1" on SQLite.
    active = sa.column("active", sa.Boolean()) == sa.true()
    op.create_index(
        "uq_index_builds_one_active",
        "index_builds",
        ["active"],
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )

    op.create_table(
        "records",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("fs", sa.Float(), nullable=False),
        sa.Column("n_leads", sa.Integer(), nullable=False),
        sa.Column("lead_names", sa.JSON(), nullable=False),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(128), nullable=True),
        sa.Column("split", sa.String(32), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        # Unnamed, as create_all left it (PostgreSQL calls it records_key_key).
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_records_patient_id", "records", ["patient_id"])
    op.create_index("ix_records_source", "records", ["source"])

    op.create_table(
        "build_members",
        sa.Column(
            "build_id",
            sa.String(36),
            sa.ForeignKey("index_builds.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "record_id", _ID, sa.ForeignKey("records.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_build_members_record_id", "build_members", ["record_id"])

    op.create_table(
        "labels",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "record_id", _ID, sa.ForeignKey("records.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.UniqueConstraint("record_id", "kind", "code", name="uq_labels_record_kind_code"),
    )
    op.create_index("ix_labels_kind_code", "labels", ["kind", "code"])

    op.create_table(
        "reports",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "record_id", _ID, sa.ForeignKey("records.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.UniqueConstraint("record_id", "language", name="uq_reports_record_lang"),
    )


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in (
        "reports",
        "labels",
        "build_members",
        "records",
        "index_builds",
        "generation_logs",
    ):
        op.drop_table(table)
