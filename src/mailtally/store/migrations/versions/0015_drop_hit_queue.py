"""The tracking hits' queue table (0014) dropped: on a SQLite file answered hits wait in a
journal file per process now (``store.hit_journal``), which costs a request one ``write``
instead of a transaction. Hits a server left queued (killed) are applied by a server of the
version that queued them; one still there is refused here, never dropped.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if "hit_queue" not in sa.inspect(bind).get_table_names():
        return
    left = bind.execute(sa.text("SELECT count(*) FROM hit_queue")).scalar_one()
    if left:
        raise RuntimeError(f"{left} tracking hits are still queued: start the previous version of mailtally "
                           "once (it applies them), stop it, then upgrade")
    op.drop_table("hit_queue")


def downgrade() -> None:
    pass  # 0014's downgrade drops the table it made; nothing here to undo
