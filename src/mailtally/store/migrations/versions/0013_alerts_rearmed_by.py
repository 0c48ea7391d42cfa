"""Who re-armed an alert (``alerts.rearmed_by``): a person, or a correction that made its
condition false (store.corrections re-evaluates the rules of the activities it touched).
Alerts re-armed before are left without one. Idempotent: a database 0001 made from today's
schema already has the column.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "rearmed_by" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("alerts")}:
        return
    op.add_column("alerts", sa.Column("rearmed_by", sa.String(16)))


def downgrade() -> None:
    op.drop_column("alerts", "rearmed_by")
