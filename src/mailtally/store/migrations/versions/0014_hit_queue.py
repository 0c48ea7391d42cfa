"""The tracking hits' queue (``hit_queue``): answered hits, durable, waiting to be rolled up
into the log and the counters. Replaced by a journal file per process (``store.hit_journal``)
and dropped by 0015. Idempotent.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def _table() -> sa.Table:
    return sa.Table(
        "hit_queue", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True), sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("activity_num", sa.BigInteger, nullable=False),
        sa.Column("contact_num", sa.BigInteger, nullable=False),
        sa.Column("click", sa.Boolean, nullable=False), sa.Column("url_id", sa.String(64)),
        sa.Column("at", sa.BigInteger, nullable=False), sa.Column("user_agent", sa.Text, nullable=False),
        sa.Column("ip", sa.String(45)), sa.Column("scanner", sa.Boolean, nullable=False),
        sa.Column("head", sa.Boolean, nullable=False))


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "hit_queue" not in sa.inspect(op.get_bind()).get_table_names():
        _table().create(op.get_bind())


def downgrade() -> None:
    op.drop_table("hit_queue")
