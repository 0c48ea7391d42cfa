"""Provider webhook endpoints and the signature tokens seen (replay refusal).

Idempotent: a database 0001 made after this change already has both tables.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailtally.store import schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = (schema.webhook_endpoints, schema.webhook_tokens)


def upgrade() -> None:
    bind = op.get_bind()
    have = set(sa.inspect(bind).get_table_names())
    for table in TABLES:
        if table.name not in have:
            table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    have = set(sa.inspect(bind).get_table_names())
    for table in reversed(TABLES):
        if table.name in have:
            table.drop(bind)
