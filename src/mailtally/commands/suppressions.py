"""``mailtally suppressions ...`` and ``mailtally bounces reclassify``: the list from the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from ..ingest import bounce_messages
from ..store import dashboard, raw_messages, suppressions
from ..store.accounts import UnknownAccount, account_id, signing_secret
from ..store.db import writing
from ..suppression import csvfile
from ..suppression.policy import PolicyError

err = Console(stderr=True)


def _account(engine: Engine, name: str) -> int | None:
    with engine.connect() as conn:
        try:
            return account_id(conn, name)
        except UnknownAccount:
            err.print(f"[red]Error:[/] no account named {name!r}")
            return None


def import_csv(engine: Engine, account: str, path: str) -> int:
    acc = _account(engine, account)
    if acc is None:
        return 1
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        err.print(f"[red]Error:[/] cannot read {path}: {e}")
        return 1
    try:
        rows = csvfile.parse(text)
    except csvfile.CsvError as e:
        err.print(f"[red]Error:[/] {path}, {e}; nothing imported")
        return 1
    with Progress(TextColumn("[bold]importing suppressions"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("import", total=len(rows))
        with writing(engine) as conn:  # one transaction: all or nothing
            changed = suppressions.import_rows(conn, acc, rows, progress=lambda n: progress.advance(task, n))
    print(f"{len(rows):,} rows read, {changed:,} entries added or replaced")
    return 0


def export_csv(engine: Engine, account: str, path: str) -> int:
    acc = _account(engine, account)
    if acc is None:
        return 1
    out = sys.stdout if path == "-" else open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        with engine.connect() as conn, Progress(
                TextColumn("[bold]exporting suppressions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=err) as progress:
            task = progress.add_task("export", total=sum(dashboard.suppression_counts(conn, acc).values()))

            def counted(rows: Iterator[Any]) -> Iterator[Any]:
                for n, row in enumerate(rows, 1):
                    yield row
                    if n % 1000 == 0:
                        progress.advance(task, 1000)

            for chunk in csvfile.write(counted(suppressions.every(conn, acc))):
                out.write(chunk)
            progress.update(task, completed=progress.tasks[0].total)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def policy(engine: Engine, account: str, changes: list[str]) -> int:
    acc = _account(engine, account)
    if acc is None:
        return 1
    data: dict[str, object] = {}
    for change in changes:
        key, eq, value = change.partition("=")
        if not eq:
            err.print(f"[red]Error:[/] {change!r}: write field=value (e.g. soft_count=5)")
            return 1
        try:
            data[key.strip()] = json.loads(value)
        except ValueError:
            data[key.strip()] = value  # a bare word, e.g. blocks=soft
    with writing(engine) as conn:
        try:
            chosen = suppressions.change_policy(conn, acc, data)
        except PolicyError as e:
            err.print(f"[red]Error:[/] {e}")
            return 1
    print(json.dumps(chosen.to_dict(), indent=2))
    return 0


def reclassify(engine: Engine, account: str, dry_run: bool, secret: str | None = None) -> int:
    acc = _account(engine, account)
    if acc is None:
        return 1
    with writing(engine) as conn:
        key = signing_secret(conn, secret).encode()
        total = raw_messages.count(conn, acc)
    changes = []
    after = 0
    with Progress(TextColumn("[bold]re-reading stored bounces"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("reclassify", total=total)
        while True:
            with (engine.connect() if dry_run else writing(engine)) as conn:
                batch = raw_messages.ids(conn, acc, after_id=after, limit=100)
                if not batch:
                    break
                changes += bounce_messages.reclassify(conn, acc, key, batch, dry_run=dry_run).corrections
            after = batch[-1]
            progress.advance(task, len(batch))
    for c in changes:
        was = f"{c.old_reason} ({c.old_code})" if c.old_reason else "nothing logged"
        print(f"message {c.message_id}  {c.email}: {was} -> {c.new_reason} ({c.new_code})"
              + ("  suppression lifted" if c.suppression_lifted else ""))
    print(f"{total:,} messages, {len(changes):,} {'would change' if dry_run else 'changed'}")
    return 0
