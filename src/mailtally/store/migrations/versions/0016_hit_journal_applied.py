"""How far into each tracking hit journal file the log holds its hits (``hit_journal_applied``):
one process applies every process's journal now, and a report catching up or a process starting
applies only what that table says is left. Idempotent.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "hit_journal_applied" not in sa.inspect(op.get_bind()).get_table_names():
        op.create_table("hit_journal_applied", sa.Column("file", sa.String(100), primary_key=True),
                        sa.Column("applied", sa.BigInteger, nullable=False))


def downgrade() -> None:
    op.drop_table("hit_journal_applied")
