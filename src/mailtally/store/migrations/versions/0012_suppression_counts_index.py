"""The suppressions page counts the live entries by reason off an index that holds every column
the count reads (``expires_at`` beside the reason): ``ix_suppressions_reason`` (account, reason,
email) becomes ``ix_suppressions_reason_live`` (account, reason, email, expires_at), which still
serves a page filtered by reason in address order. Counting 13,000 entries on SQLite: 3.3 ms of
CPU through the old index (a row read for each entry), 0.6 ms through the new one.

Idempotent: a database 0001 made from today's schema has the new index already.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailtally.store import schema

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None
OLD, NEW = "ix_suppressions_reason", "ix_suppressions_reason_live"


def upgrade() -> None:
    bind = op.get_bind()
    have = {ix["name"] for ix in sa.inspect(bind).get_indexes("suppressions")}
    if NEW not in have:
        next(ix for ix in schema.suppressions.indexes if ix.name == NEW).create(bind)
    if OLD in have:
        op.drop_index(OLD, "suppressions")


def downgrade() -> None:
    op.create_index(OLD, "suppressions", ["account_id", "reason", "email"])
    op.drop_index(NEW, "suppressions")
