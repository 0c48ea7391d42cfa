"""``mailtally ingest``: NDJSON events into the store, in all-or-nothing batches."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from ..ingest.batch import BadBody, iter_ndjson, to_events
from ..store.accounts import UnknownAccount, account_id
from ..store.db import writing
from ..store.writer import BatchRejected, WriteResult, write_events


def _batches(stream: IO[bytes], size: int) -> Iterator[tuple[int, list[Any]]]:
    batch: list[Any] = []
    start = 0
    for item in iter_ndjson(stream):
        batch.append(item)
        if len(batch) == size:
            yield start, batch
            start += len(batch)
            batch = []
    if batch:
        yield start, batch


def run(engine: Engine, account: str, path: str, batch_size: int) -> int:
    err = Console(stderr=True)
    with engine.connect() as conn:
        try:
            acc = account_id(conn, account)
        except UnknownAccount:
            err.print(f"[red]Error:[/] no account named {account!r}")
            return 1
    try:
        stream: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as e:
        err.print(f"[red]Error:[/] cannot read {path}: {e.strerror}")
        return 1
    total = WriteResult()
    size = None if path == "-" else _size(stream)
    with stream, Progress(
        TextColumn("[bold]ingesting"), BarColumn(), TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(), console=err, transient=False,
    ) as progress:
        task = progress.add_task("ingest", total=size, events=0)
        try:
            for start, items in _batches(stream, batch_size):
                events, errors = to_events(items, start)
                try:
                    if errors:
                        raise BatchRejected(errors)
                    with writing(engine, bulk=True) as conn:
                        result = write_events(conn, acc, events)
                except BatchRejected as e:
                    progress.stop()
                    for item_error in e.errors[:20]:
                        err.print(f"  line of event {item_error.index + 1}: {item_error.field}: {item_error.message}")
                    err.print(f"[red]Error:[/] batch starting at event {start + 1} rejected; "
                              f"{total.accepted:,} events recorded before it")
                    return 1
                total.received += result.received
                total.accepted += result.accepted
                total.duplicates += result.duplicates
                total.contacts_created += result.contacts_created
                progress.update(task, completed=stream.tell() if size else 0, events=total.received)
        except BadBody as e:
            err.print(f"[red]Error:[/] {e}; {total.accepted:,} events recorded before it")
            return 1
    print(f"{total.received:,} events read, {total.accepted:,} recorded, {total.duplicates:,} already known, "
          f"{total.contacts_created:,} new contacts")
    return 0


def _size(stream: IO[bytes]) -> int | None:
    try:
        import os

        return os.fstat(stream.fileno()).st_size
    except OSError:
        return None
