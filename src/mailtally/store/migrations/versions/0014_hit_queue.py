"""The tracking hits' queue (``hit_queue``): answered hits, durable, waiting to be rolled up
into the log and the counters (``store.hit_queue``). Idempotent: a database 0001 made from
today's schema already has the table.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailtally.store.schema import hit_queue

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "hit_queue" not in sa.inspect(op.get_bind()).get_table_names():
        hit_queue.create(op.get_bind())


def downgrade() -> None:
    op.drop_table("hit_queue")
