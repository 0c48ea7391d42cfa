"""The log keeps whether a tracked hit counts for the vendor surfaces (``events.uncounted``),
so their event lists follow the account's counting policy as their counters do.

Machine hits logged before are marked as the account's policy reads now (the counters counted
them by the policy of their time, which was the same unless it was changed since).
Idempotent: a database 0001 made from today's schema already has the column.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailtally.vocab import MACHINE_KIND, MachineCounting, MachineKind, Verdict

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PROXIES = ", ".join(f"'{why.value}'" for why, kind in MACHINE_KIND.items() if kind is MachineKind.PROXY)


def _not_counted(kind: str, column: str) -> str:
    counted = (f"a.{column} = '{MachineCounting.ALL.value}' OR (a.{column} = '{MachineCounting.PROXY.value}' "
               f"AND events.verdict_why IN ({PROXIES}))")
    return (f"(events.type = '{kind}' AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = events.account_id "
            f"AND ({counted})))")


def upgrade() -> None:
    bind = op.get_bind()
    if "uncounted" in {c["name"] for c in sa.inspect(bind).get_columns("events")}:
        return
    op.add_column("events", sa.Column("uncounted", sa.Boolean))
    op.execute(f"UPDATE events SET uncounted = TRUE WHERE verdict = '{Verdict.MACHINE.value}' AND ("
               f"{_not_counted('open', 'count_machine_opens')} OR {_not_counted('click', 'count_machine_clicks')})")


def downgrade() -> None:
    op.drop_column("events", "uncounted")
