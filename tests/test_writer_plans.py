"""The writer's probes stay probes of the key on PostgreSQL, on a database loaded in bulk.

Before: on tables never analysed the planner took ``ix_recipients_sent`` and
``ix_suppressions_cause`` for one-key lookups (a walk over the activity's rows for each
probe), and flattened the LATERAL joins into filters over every contact (0.02x the COPY floor).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from mailtally.events import Event
from mailtally.store import catalog, migrate, reactions, staging, statistics, suppressions, writer
from mailtally.store.db import open_engine, writing
from mailtally.vocab import EventType, SuppressionReason

from .conftest import fresh_postgres_database, make_account

T0 = 1_700_000_000_000


@pytest.fixture
def fresh() -> Iterator[Engine]:
    with fresh_postgres_database() as url:
        engine = open_engine(url)
        migrate.upgrade(engine)
        yield engine
        engine.dispose()


def _plan(conn: object, sql: str, params: tuple[object, ...]) -> str:
    cur = conn.connection.cursor()  # type: ignore[attr-defined]
    try:
        cur.execute("EXPLAIN " + staging.expand(sql, "postgresql"), params)
        return "\n".join(r[0] for r in cur.fetchall())
    finally:
        cur.close()


def test_probes_use_the_keys_on_a_database_loaded_in_bulk(fresh: Engine) -> None:
    account = make_account(fresh)
    with fresh.begin() as conn:
        campaign = catalog.create_campaign(conn, account.id, "bulk")
        activity = catalog.create_activity(conn, account.id, campaign.id).id
        ids = list(catalog.contacts_for_emails(conn, account.id, (f"u{i}@bulk.example" for i in range(3000))).values())
        suppressions.add(conn, account.id, [suppressions.Entry(f"u{i}@bulk.example", SuppressionReason.HARD_BOUNCE, T0)
                                            for i in range(0, 3000, 3)])
    with writing(fresh) as conn:
        writer.write_events(conn, account.id, [Event(EventType.SEND, activity, T0 + 1000 + i, c)
                                               for i, c in enumerate(ids[:1500])])
    with writing(fresh) as conn:
        batch = [Event(EventType.SEND, activity, T0 + 10_000 + i, c) for i, c in enumerate(ids)]
        result = writer.write_events(conn, account.id, batch, react=False)
        assert result.accepted == 3000
        assert statistics.analyse_stale(conn) == []  # analysed by the writer already
        held = _plan(conn, reactions._HELD_SENDS_SQL, (account.id, account.id))
        assert "suppressions_pkey" in held and "uq_contacts_num" in held, held
        # From the list's side: each entry's contact by address, then its sends in the stage.
        by_list = _plan(conn, reactions._HELD_BY_LIST_SQL.replace("{nums}", "1"), (account.id, account.id))
        assert "uq_contacts_email" in by_list and "mt_stage_pkey" in by_list, by_list
        assert "Seq Scan on contacts" not in by_list and "Seq Scan on mt_stage" not in by_list, by_list
        deltas = _plan(conn, writer._STATE_DELTAS_SQL, (account.id,))
        assert "recipients_pkey" in deltas and "ix_recipients_sent" not in deltas, deltas
        clickers = _plan(conn, writer._CLICKERS_SQL, (account.id,) * 3)
        assert "uq_contacts_num" in clickers and "Join Filter" not in clickers, clickers
