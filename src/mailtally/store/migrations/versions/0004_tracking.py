"""Tracking: the log's user agent, IP, seconds since send and machine verdict; counters of
human and machine hits; each account's counting policy; forwarded-to addresses.

Idempotent: a database 0001 made from today's schema already has all of it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailtally.store import schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW_COLUMNS: dict[str, list[sa.Column]] = {
    "events": [sa.Column("user_agent", sa.Text), sa.Column("ip", sa.String(45)),
               sa.Column("since_send_s", sa.BigInteger), sa.Column("verdict", sa.String(8)),
               sa.Column("verdict_why", sa.String(24))],
    "accounts": [sa.Column("count_machine_opens", sa.String(8), nullable=False, server_default="proxy"),
                 sa.Column("count_machine_clicks", sa.String(8), nullable=False, server_default="none")],
    "activity_counters": [sa.Column(name, sa.BigInteger, nullable=False, server_default="0")
                          for name in ("opens_human", "opens_machine", "clicks_human", "clicks_machine")],
}


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table, columns in NEW_COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column.name not in have:
                op.add_column(table, column)
    schema.forward_addresses.create(bind, checkfirst=True)


def downgrade() -> None:
    schema.forward_addresses.drop(op.get_bind(), checkfirst=True)
    for table, columns in NEW_COLUMNS.items():
        for column in columns:
            op.drop_column(table, column.name)
