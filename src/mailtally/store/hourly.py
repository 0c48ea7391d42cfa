"""The hourly roll-up of opens and clicks the dashboard's charts read (``activity_hourly``)."""

from __future__ import annotations

from sqlalchemy import Connection

from . import staging

HOUR = 3_600_000

# From the writer's stage (``mt_stage``, the batch's accepted events): the opens and clicks the
# counters count (opens_all, clicks_all), so a machine hit the policy leaves out (``uncounted``,
# as writer.COUNTED reads it) is left out here too. SQLite needs the WHERE before ON CONFLICT.
_ADD_SQL = (
    "INSERT INTO activity_hourly (account_id, activity_num, hour, opens, clicks) "
    "SELECT {p}, s.activity_num, (s.occurred_at / 3600000) * 3600000, "
    "SUM(CASE WHEN s.type = 'open' THEN 1 ELSE 0 END), SUM(CASE WHEN s.type = 'click' THEN 1 ELSE 0 END) "
    "FROM mt_stage s WHERE s.type IN ('open', 'click') AND s.uncounted IS NULL "
    "GROUP BY s.activity_num, (s.occurred_at / 3600000) * 3600000 "
    "ON CONFLICT (account_id, activity_num, hour) DO UPDATE SET "
    "opens = activity_hourly.opens + excluded.opens, clicks = activity_hourly.clicks + excluded.clicks"
)


def add_staged(conn: Connection, account: int) -> None:
    """Count the staged batch's opens and clicks into their hours; inside the writer's transaction."""
    cur = conn.connection.cursor()
    try:
        cur.execute(staging.expand(_ADD_SQL, conn.dialect.name), (account,))
    finally:
        cur.close()


# Builds the roll-up from the log, for databases whose events predate it (migration 0008). The log
# does not keep whether a machine hit was counted; before tracking (0004) every event was.
BACKFILL = (
    "INSERT INTO activity_hourly (account_id, activity_num, hour, opens, clicks) "
    "SELECT account_id, activity_num, (occurred_at / 3600000) * 3600000, "
    "SUM(CASE WHEN type = 'open' THEN 1 ELSE 0 END), SUM(CASE WHEN type = 'click' THEN 1 ELSE 0 END) "
    "FROM events WHERE type IN ('open', 'click') GROUP BY account_id, activity_num, (occurred_at / 3600000) * 3600000"
)
