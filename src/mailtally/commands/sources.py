"""Running the bounce sources a config declares, and ``mailtally sources``."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from ..config import Settings
from ..servers.config import ConfigError, SourcesConfig
from ..servers.runner import Running, build
from ..store.sources import list_sources


class Started:
    def __init__(self, running: Running, config: SourcesConfig) -> None:
        self.running, self.config = running, config

    def describe(self) -> list[str]:
        lines = []
        if self.config.smtp:
            s = self.config.smtp
            lines.append(f"  smtp      {s.name}: listening on {s.host}:{s.port}"
                         f"{' (STARTTLS)' if s.tls_cert else ''}")
        lines += [f"  mailbox   {m.name}: account {m.account}" for m in self.config.mailboxes]
        lines += [f"  log       {x.name}: account {x.account}, {x.format}" for x in self.config.logs]
        return lines


def setup_logging() -> None:
    """One line per message or batch a source handles, and its errors, on stderr."""
    logger = logging.getLogger("mailtally.sources")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@contextmanager
def open_sources(engine: Engine, settings: Settings, config: SourcesConfig) -> Iterator[Started]:
    import typer

    setup_logging()
    try:
        sources = build(engine, settings, config)
    except ConfigError as e:
        typer.secho(f"Error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    with Running(sources) as running:
        yield Started(running, config)


def run_forever(engine: Engine, settings: Settings, config: SourcesConfig) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with open_sources(engine, settings, config) as started:
        for line in started.describe():
            print(line, flush=True)
        print("mailtally sources running (Ctrl+C stops)", flush=True)
        stop.wait()
    return 0


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def show(engine: Engine) -> int:
    with engine.connect() as conn:
        rows = list_sources(conn)
    if not rows:
        print("no sources have run yet (mailtally serve --config FILE, mailtally smtp, mailbox watch, logs ingest)")
        return 0
    table = Table("source", "kind", "last success (UTC)", "handled", "backlog", "last error (UTC)", "error",
                  box=None, pad_edge=False)
    for r in rows:
        table.add_row(r.name, r.kind, _when(r.last_success_at), f"{r.handled:,}", f"{r.backlog:,}",
                      _when(r.last_error_at), (r.last_error or "")[:80])
    Console(width=200).print(table)
    return 0
