"""``mailtally messages render``: the message the toolkit makes for each recipient, from files."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from sqlalchemy import Engine, select

from ..config import Settings
from ..store.schema import accounts, activities
from ..tracking.toolkit import Recipient, RenderError, render_messages


def run(engine: Engine, settings: Settings, activity_id: str, html: Path | None, text: Path | None,
        to: list[str], record_send: bool, account: str | None, jsonl: bool) -> int:
    with engine.connect() as conn:
        q = select(activities.c.account_id, activities.c.id).where(activities.c.id == activity_id.lower())
        if account is not None:
            q = q.join(accounts, accounts.c.id == activities.c.account_id).where(accounts.c.name == account)
        found = conn.execute(q).all()
    if len(found) != 1:
        typer.secho(f"Error: no campaign activity {activity_id}" + (f" in account {account!r}" if account else ""),
                    fg=typer.colors.RED, err=True)
        return 1
    try:
        bodies = [p.read_text(encoding="utf-8") if p is not None else None for p in (html, text)]
    except (OSError, UnicodeDecodeError) as e:
        typer.secho(f"Error: {e}", fg=typer.colors.RED, err=True)
        return 1
    if not settings.public_url:
        typer.secho(f"Warning: MAILTALLY_PUBLIC_URL is not set; links point at {settings.base_url}",
                    fg=typer.colors.YELLOW, err=True)
    secret = settings.secret.encode() if settings.secret else None
    try:
        messages = list(render_messages(
            engine, int(found[0].account_id), found[0].id, [Recipient(email=e) for e in to], html=bodies[0],
            text=bodies[1], base_url=settings.base_url, secret=secret, record_send=record_send,
            bounce_domain=settings.bounce_domain))
    except RenderError as e:
        typer.secho(f"Error: {e}", fg=typer.colors.RED, err=True)
        for item in e.errors:
            typer.secho(f"  recipient {item.index + 1}: {item.message}", err=True)
        return 1
    for m in messages:
        if jsonl:
            typer.echo(orjson.dumps(m.as_dict()).decode())
            continue
        typer.echo(f"To: {m.email}")
        for name, value in m.headers.items():
            typer.echo(f"{name}: {value}")
        for label, body in (("text", m.text), ("html", m.html)):
            if body is not None:
                typer.echo(f"\n--- {label} ---\n{body}")
        typer.echo("")
    return 0
