"""The event log partitioned by month on PostgreSQL (store/partitions.py); SQLite keeps one table.

A log made before this revision is moved, every row kept, into a partitioned table of the same
shape, with one partition for each month its events fall in (and two for times outside timefmt's range
that older versions let in). A database whose log is
partitioned already (made by 0001 from today's schema) is left alone, as is SQLite.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

from mailtally.store import partitions, schema

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None
OLD = "events_unpartitioned"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if partitions.is_partitioned(bind):
        partitions.ensure_edges(bind)
        return
    for ix in schema.events.indexes:
        op.execute(f"DROP INDEX IF EXISTS {ix.name}")
    op.execute(f"ALTER TABLE events RENAME TO {OLD}")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT events_pkey TO {OLD}_pkey")
    schema.events.create(bind)
    partitions.ensure_edges(bind)
    partitions.ensure_months(bind, partitions.months_in(bind, OLD))
    columns = ", ".join(c.name for c in schema.events.c)
    op.execute(f"INSERT INTO events ({columns}) SELECT {columns} FROM {OLD}")
    op.execute(f"DROP TABLE {OLD}")


def downgrade() -> None:
    raise NotImplementedError("the log is not unpartitioned again; restore a backup instead")
