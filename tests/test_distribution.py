"""The schema keeps Citus's rule, checked on a real PostgreSQL database after every migration:
each table is a reference table or is distributed by account_id, and then every primary key,
unique constraint and unique index includes account_id."""

from __future__ import annotations

from sqlalchemy import Engine, text

from mailtally.store import distribution
from mailtally.store.schema import metadata

from .conftest import REPO, fresh_postgres_database

UNIQUE_KEYS = text("""
    SELECT c.relname, i.relname, array_agg(a.attname::text ORDER BY k.ord)
    FROM pg_index x
    JOIN pg_class c ON c.oid = x.indrelid
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
    WHERE n.nspname = current_schema() AND (x.indisunique OR x.indisprimary) AND NOT c.relispartition
    GROUP BY c.relname, i.relname
""")
TABLES = text("""
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
""")


def _migrated_postgres() -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    from mailtally.store import migrate
    from mailtally.store.db import open_engine

    with fresh_postgres_database() as url:
        engine: Engine = open_engine(url)
        try:
            migrate.upgrade(engine)
            with engine.connect() as conn:
                tables = [r[0] for r in conn.execute(TABLES)]
                keys = [(t, i, list(cols)) for t, i, cols in conn.execute(UNIQUE_KEYS)]
        finally:
            engine.dispose()
    return tables, keys


def test_every_unique_key_of_a_distributed_table_includes_account_id() -> None:
    tables, keys = _migrated_postgres()
    assert set(metadata.tables) <= set(tables)
    for table in tables:
        if distribution.is_distributed(table):
            columns = metadata.tables[table].c if table in metadata.tables else []
            assert distribution.DISTRIBUTION_COLUMN in columns, f"{table} has no account_id: classify it"
    offending = [f"{t}.{i} {cols}" for t, i, cols in keys
                 if distribution.is_distributed(t) and distribution.DISTRIBUTION_COLUMN not in cols]
    assert offending == []


def test_docs_give_the_commands_for_every_table() -> None:
    doc = (REPO / "docs" / "scaling.md").read_text()
    for command in distribution.citus_commands(sorted(metadata.tables)):
        assert command in doc, f"docs/scaling.md lacks: {command}"
