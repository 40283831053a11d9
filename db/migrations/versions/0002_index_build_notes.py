"""index_builds.notes: a free-text note on a build (why it was made, what changed).

Nullable with no default, so existing builds read None and writers need not set it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("index_builds") as batch:
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))


def downgrade() -> None:
    # "never": SQLite (3.35 and later) drops a plain column in place; copying the table, batch
    # mode's default there, would be needless work on a table others reference.
    with op.batch_alter_table("index_builds", recreate="never") as batch:
        batch.drop_column("notes")
