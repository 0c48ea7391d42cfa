"""The initial schema.

Until the first release the schema is created from ``schema.metadata`` as it stands;
every change after a release gets its own revision with explicit operations.

Revision ID: 0001
Revises:
"""

from alembic import op

from mailtally.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
