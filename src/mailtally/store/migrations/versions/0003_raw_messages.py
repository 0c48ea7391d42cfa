"""Raw bounce messages kept (``raw_messages``), linked to the events they produced
(``raw_message_events``) and to unmatched bounces (``unmatched_bounces.raw_message_id``).

Idempotent: a database 0001 made after this change already has all three and is left alone.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailtally.store import schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in (schema.raw_messages, schema.raw_message_events):
        table.create(bind, checkfirst=True)
    if "raw_message_id" not in {c["name"] for c in sa.inspect(bind).get_columns("unmatched_bounces")}:
        op.add_column("unmatched_bounces", sa.Column("raw_message_id", sa.BigInteger))


def downgrade() -> None:
    op.drop_column("unmatched_bounces", "raw_message_id")
    schema.raw_message_events.drop(op.get_bind(), checkfirst=True)
    schema.raw_messages.drop(op.get_bind(), checkfirst=True)
