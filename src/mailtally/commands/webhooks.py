"""``mailtally webhooks add|list|remove``: provider webhook endpoints from the command line."""

from __future__ import annotations

import typer
from sqlalchemy import Engine

from ..store import webhooks as store
from ..store.accounts import UnknownAccount, account_id
from ..store.db import writing


def _account(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        try:
            return account_id(conn, name)
        except UnknownAccount:
            typer.secho(f"Error: no account named {name!r}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None


def url(base: str, endpoint: store.Endpoint) -> str:
    return f"{base.rstrip('/')}/hooks/{endpoint.provider}/{endpoint.id}"


def add(engine: Engine, base: str, account: str, provider: str, secret: str, username: str | None,
        topic_arns: list[str]) -> int:
    from ..api.webhook_endpoints import check

    acc = _account(engine, account)
    try:
        options = check(provider, secret, username, topic_arns)
    except ValueError as e:
        typer.secho(f"Error: {e}", fg=typer.colors.RED, err=True)
        return 2
    with writing(engine) as conn:
        endpoint = store.create_endpoint(conn, acc, provider, secret, options)
    typer.echo(url(base, endpoint))
    typer.echo(f"endpoint {endpoint.id} for {provider} created; paste the URL above into {provider}", err=True)
    return 0


def list_all(engine: Engine, base: str, account: str) -> int:
    acc = _account(engine, account)
    with engine.connect() as conn:
        for e in store.list_endpoints(conn, acc):
            typer.echo(f"{e.id}\t{e.provider}\t{url(base, e)}")
    return 0


def remove(engine: Engine, account: str, endpoint_id: str) -> int:
    acc = _account(engine, account)
    with writing(engine) as conn:
        if not store.delete_endpoint(conn, acc, endpoint_id):
            typer.secho(f"Error: no endpoint {endpoint_id} in account {account}", fg=typer.colors.RED, err=True)
            return 1
    typer.echo(f"endpoint {endpoint_id} removed")
    return 0
