"""Bounce sources' state (``sources``) and Postfix queue ids that carry our tokens (``log_queue_refs``).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailtally.store import schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = (schema.sources, schema.log_queue_refs)


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for table in TABLES:
        if table.name not in existing:
            table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        table.drop(bind, checkfirst=True)
