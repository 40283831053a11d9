"""generation_logs.findings and .input: the findings (probabilities, decisions, sources) and
the input notes (leads, rates, warnings) behind each logged output.

Nullable, so rows logged before read None.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generation_logs") as batch:
        batch.add_column(sa.Column("findings", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("input", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generation_logs", recreate="never") as batch:
        batch.drop_column("input")
        batch.drop_column("findings")
