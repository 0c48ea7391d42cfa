"""The suppression list, per-account policies, alerts, and outgoing webhooks (subscriptions,
outbox, attempts). New tables only; idempotent (a database 0001 made after this change
already has them).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from mailtally.store import schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = (schema.suppressions, schema.account_policies, schema.alerts, schema.webhook_subscriptions,
          schema.webhook_outbox, schema.webhook_attempts)


def upgrade() -> None:
    for table in TABLES:
        table.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    for table in reversed(TABLES):
        table.drop(op.get_bind(), checkfirst=True)
