"""Dashboard users (``mailtally users create``), the hourly roll-up of opens and clicks
(built from the log for databases that already hold events), and the index of bounces by reason.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailtally.store import hourly, schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    tables = sa.inspect(bind).get_table_names()
    if "users" not in tables:
        schema.users.create(bind)
    if "activity_hourly" not in tables:
        schema.activity_hourly.create(bind)
        bind.execute(sa.text(hourly.BACKFILL))
    if "ix_events_bounce_reason" not in {ix["name"] for ix in sa.inspect(bind).get_indexes("events")}:
        next(ix for ix in schema.events.indexes if ix.name == "ix_events_bounce_reason").create(bind)


def downgrade() -> None:
    op.drop_index("ix_events_bounce_reason", "events")
    op.drop_table("activity_hourly")
    op.drop_table("users")
