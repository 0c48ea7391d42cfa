"""Indexes for the dashboard's lists: the account's bounces by reason and by code, newest first,
and an activity's tracked opens and clicks by verdict (human or machine).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailtally.store import schema

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
NAMES = ("ix_events_bounce_reason_time", "ix_events_bounce_code_time", "ix_events_verdict")


def upgrade() -> None:
    bind = op.get_bind()
    have = {ix["name"] for ix in sa.inspect(bind).get_indexes("events")}
    for ix in schema.events.indexes:
        if ix.name in NAMES and ix.name not in have:
            ix.create(bind)


def downgrade() -> None:
    for name in NAMES:
        op.drop_index(name, "events")
