"""``mailtally bounces ingest``: bounce messages from files, Maildirs and mboxes into the store."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from ..config import Settings
from ..ingest.bounce_messages import ingest_message
from ..mailfiles import MailSourceError, iter_messages
from ..store.accounts import UnknownAccount, account_id, signing_secret
from ..store.db import writing


def run(engine: Engine, account: str, paths: list[str], secret: str | None) -> int:
    err = Console(stderr=True)
    with writing(engine) as conn:
        try:
            acc = account_id(conn, account)
        except UnknownAccount:
            err.print(f"[red]Error:[/] no account named {account!r}")
            return 1
        key = signing_secret(conn, secret).encode()
    cap = Settings.from_env().raw_message_max_bytes
    totals: Counter[str] = Counter()
    failed = 0
    with Progress(TextColumn("[bold]reading bounces"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[source]}"), TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("bounces", total=None, source="")
        for path in paths:
            try:
                for source, raw in iter_messages(path):
                    progress.update(task, advance=1, source=source[-50:])
                    with writing(engine) as conn:
                        result = ingest_message(conn, acc, key, raw, source="cli", keep_bytes=cap)
                    totals["messages"] += 1
                    totals["not bounces"] += not result.outcomes
                    totals["recorded"] += result.recorded
                    totals["duplicates"] += result.duplicates
                    totals["unmatched"] += result.unmatched_new
                    for o in result.outcomes:
                        totals[f"matched by {o.matched_by}" if o.matched_by else "no send found"] += 1
            except MailSourceError as e:
                failed += 1
                progress.console.print(f"[red]Error:[/] {e}")
    print(f"{totals['messages']:,} messages: {totals['recorded']:,} events recorded, "
          f"{totals['unmatched']:,} unmatched kept, {totals['duplicates']:,} already known, "
          f"{totals['not bounces']:,} not bounces")
    ways = sorted(k for k in totals if k.startswith("matched by") or k == "no send found")
    if ways:
        print("  " + ", ".join(f"{k}: {totals[k]:,}" for k in ways))
    return 1 if failed else 0
