"""The hourly roll-up of opens and clicks the dashboard's charts read (``activity_hourly``)."""

from __future__ import annotations

from sqlalchemy import Connection

from . import rawsql

HOUR = 3_600_000

# One row per (activity, hour) the batch touched, added to what the hour holds: ``add``, from the
# writer's tally of the opens and clicks the counters count (so a machine hit the policy leaves
# out is left out here too), and the hit writer's.
UPSERT = (
    "INSERT INTO activity_hourly (account_id, activity_num, hour, opens, clicks) VALUES ({m}, {m}, {m}, {m}, {m}) "
    "ON CONFLICT (account_id, activity_num, hour) DO UPDATE SET "
    "opens = activity_hourly.opens + excluded.opens, clicks = activity_hourly.clicks + excluded.clicks"
)


def add(conn: Connection, account: int, hours: dict[tuple[int, int], list[int]]) -> None:
    """Add ``hours`` ((activity number, hour) -> [opens, clicks]); inside the writer's transaction."""
    if hours:
        cur = conn.connection.cursor()
        try:
            cur.executemany(UPSERT.format(m=rawsql.mark(conn)),
                            [(account, num, hour, opens, clicks) for (num, hour), (opens, clicks) in hours.items()])
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
