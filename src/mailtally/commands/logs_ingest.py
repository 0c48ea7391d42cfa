"""``mailtally logs ingest``: Postfix and Exim log lines into bounce events and deferrals."""

from __future__ import annotations

import os
import signal
import threading

import typer
from sqlalchemy import Engine

from ..config import Settings
from ..ingest.mta_logs import FORMATS
from ..servers.logs import LogFile
from ..servers.runner import account_ids, secret_of
from ..store import sources
from .sources import setup_logging


def run(engine: Engine, settings: Settings, path: str, account: str, follow: bool, log_format: str,
        name: str | None) -> int:
    from ..servers.config import ConfigError

    if log_format not in FORMATS:
        typer.secho(f"Error: --format must be one of {', '.join(FORMATS)}", fg=typer.colors.RED, err=True)
        return 2
    if path == "-" and follow:
        typer.secho("Error: --follow needs a file, not standard input", fg=typer.colors.RED, err=True)
        return 2
    try:
        acc = account_ids(engine, {account})[account]
    except ConfigError as e:
        typer.secho(f"Error: {e}", fg=typer.colors.RED, err=True)
        return 1
    source = name or ("log:-" if path == "-" else f"log:{os.path.abspath(path)}")
    setup_logging()
    stop = threading.Event()
    if follow:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        sources.register(engine, source, "log")
    reader = LogFile(engine, secret_of(engine, settings), acc, path, source, log_format)
    try:
        t = reader.run(follow=follow, stop=stop)
    except FileNotFoundError:
        typer.secho(f"Error: no such file: {path}", fg=typer.colors.RED, err=True)
        return 1
    except OSError as e:
        typer.secho(f"Error: cannot read {path}: {e.strerror}", fg=typer.colors.RED, err=True)
        return 1
    print(f"{t.lines:,} lines: {t.bounces:,} bounces, {t.deferrals:,} deferrals, {t.deliveries:,} deliveries; "
          f"{t.recorded:,} events recorded, {t.unmatched:,} unmatched bounces kept, {t.duplicates:,} already known, "
          f"{t.without_send:,} deferrals with no send found")
    return 0
