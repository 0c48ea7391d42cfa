"""How the schema spreads over a Citus cluster (docs/scaling.md): by account, everywhere.

Every table holding an account's data is distributed by ``account_id`` and co-located with the
others, so a request for one account runs on one worker. The few tables that are not an
account's data are reference tables (a copy on every node). ``tests/test_distribution.py``
checks on PostgreSQL that each table is one or the other, and that every primary key and
unique constraint of a distributed table includes ``account_id`` (Citus's rule).
"""

from __future__ import annotations

DISTRIBUTION_COLUMN = "account_id"

# Small, read on every request before the account is known (a token names its account; a
# dashboard user signs in by address alone).
# The bounce sources (`sources`, `log_queue_refs`) belong to the instance, not to an account: one
# SMTP listener or log file serves every account. `hit_journal_applied` is the instance's too (and
# only ever written on a SQLite file: store.hit_journal).
REFERENCE_TABLES = frozenset({"instance", "accounts", "api_tokens", "users", "sources", "log_queue_refs",
                              "hit_journal_applied"})

# Alembic's bookkeeping: stays on the coordinator as a local table.
LOCAL_TABLES = frozenset({"alembic_version"})


def is_distributed(table: str) -> bool:
    return table not in REFERENCE_TABLES and table not in LOCAL_TABLES


def citus_commands(tables: list[str]) -> list[str]:
    """The statements that distribute ``tables`` (all of the schema's), reference tables first."""
    out = [f"SELECT create_reference_table('{t}');" for t in sorted(REFERENCE_TABLES) if t in tables]
    distributed = [t for t in sorted(tables) if is_distributed(t)]
    if distributed:
        first = distributed[0]
        out.append(f"SELECT create_distributed_table('{first}', '{DISTRIBUTION_COLUMN}');")
        out += [f"SELECT create_distributed_table('{t}', '{DISTRIBUTION_COLUMN}', colocate_with => '{first}');"
                for t in distributed[1:]]
    return out
