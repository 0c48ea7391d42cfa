"""The ``mailtally`` command (entered through ``mailtally.__main__``)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import Engine

from .config import Settings

if TYPE_CHECKING:
    from .servers.config import SourcesConfig

app = typer.Typer(
    help="mailtally: the tally of every email campaign — sends, opens, clicks, bounces and why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
bounces_app = typer.Typer(help="Read bounce messages.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Provider webhook endpoints (SES, SendGrid, Mailgun, Postmark, SparkPost, "
                           "Brevo, Resend).", no_args_is_help=True)
users_app = typer.Typer(help="Dashboard users.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(tokens_app, name="tokens")
app.add_typer(bounces_app, name="bounces")
messages_app = typer.Typer(help="The sender's toolkit: each recipient's message.", no_args_is_help=True)
tracking_app = typer.Typer(help="Tracking: the keys that sign tracking links.", no_args_is_help=True)
app.add_typer(messages_app, name="messages")
app.add_typer(tracking_app, name="tracking")
logs_app = typer.Typer(help="Read MTA logs (Postfix, Exim).", no_args_is_help=True)
mailbox_app = typer.Typer(help="Read bounce mailboxes (IMAP, POP3, Maildir, mbox).", no_args_is_help=True)
app.add_typer(logs_app, name="logs")
app.add_typer(mailbox_app, name="mailbox")
app.add_typer(webhooks_app, name="webhooks")


suppressions_app = typer.Typer(help="The suppression list and its policy.", no_args_is_help=True)
app.add_typer(suppressions_app, name="suppressions")
app.add_typer(users_app, name="users")

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", "-d", help="Database URL (default: $MAILTALLY_DATABASE_URL or sqlite:///mailtally.db)."),
]


def _settings(database: str | None = None, **kw: object) -> Settings:
    from .config import SecretFileError

    try:
        return Settings.from_env(database_url=database, **kw)
    except SecretFileError as e:
        raise _fail(str(e)) from None


def _engine(database: str | None, migrate_first: bool = True) -> Engine:
    from .store import migrate
    from .store.db import open_engine

    engine = open_engine(_settings(database).database_url)
    if migrate_first:
        migrate.upgrade(engine)
    return engine


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@app.command()
def serve(
    database: DatabaseOpt = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    with_demo: Annotated[
        bool, typer.Option("--demo", help="Create the demo account first and print its token.")
    ] = False,
    config: Annotated[
        str | None, typer.Option("--config", help="TOML file declaring the SMTP listener, mailboxes and log files "
                                 "to run beside the API (docs/sources.md).")
    ] = None,
    smtp: Annotated[
        str | None, typer.Option("--smtp", help="Also run the SMTP bounce receiver on HOST:PORT.")
    ] = None,
) -> None:
    """Serve every API (native /v1, Constant Contact v3 and v2, Zoho, WhatCounts), and the bounce sources."""
    import os

    from .commands.sources import open_sources

    sources_config = _sources_config(config, smtp)
    if sources_config.database_url and database is None:
        database = sources_config.database_url
    settings = _settings(database, host=host or sources_config.api_host, port=port or sources_config.api_port)
    host, port = host or sources_config.api_host, port or sources_config.api_port
    engine = _engine(settings.database_url)  # migrate once before workers start
    from .store.db import set_write_wait

    set_write_wait(engine, settings.write_wait_seconds)  # the sources' and the roller's writes wait as the workers'
    _instance_policy(engine, sources_config)
    os.environ["MAILTALLY_DATABASE_URL"] = settings.database_url
    if port is not None:
        os.environ["MAILTALLY_PORT"] = str(port)
    if host is not None:
        os.environ["MAILTALLY_HOST"] = host
    base = settings.base_url
    if with_demo:
        from .demo import DEMO_ACCOUNT, ensure_demo, ensure_demo_user

        token, _ = ensure_demo(engine, progress=True, secret=settings.secret)
        login, password = ensure_demo_user(engine, secret=settings.secret)
        typer.echo(f"""
  Demo account "{DEMO_ACCOUNT}" is ready. Its API token (every scope but admin):

      {token}

  The dashboard: {base}/   sign in as {login} with password {password}

  Open next:
      {base}/docs                      interactive API documentation
      {base}/v1/campaigns              the demo campaigns (send the token as a Bearer header)
      {base}/v3/reports/summary_reports/email_campaign_summaries
                                       Constant Contact v3 reports (docs/constant-contact-v3.md)

  Try:
      curl -H "Authorization: Bearer {token}" {base}/v1/campaigns
""")
    if not settings.public_url:
        typer.secho(f"Warning: MAILTALLY_PUBLIC_URL is not set: tracking links (pixel, clicks, unsubscribe) "
                    f"will point at {base}, which recipients cannot reach. Set it to the public address.",
                    fg=typer.colors.YELLOW, err=True)
    from .api.tracking import rolling_up

    with open_sources(engine, settings, sources_config) as running, \
            rolling_up(engine, settings) if workers > 1 else nullcontext():
        for line in running.describe():
            typer.echo(line)
        typer.echo(f"mailtally serving {settings.database_url} on {base}  (Ctrl+C stops)")
        from .serving import run

        run(settings, workers)


def _instance_policy(engine: Engine, cfg: SourcesConfig) -> None:
    """The config's [suppression] table becomes the instance's default policy (none: the built-in one)."""
    from .store import suppressions
    from .store.db import writing

    with writing(engine) as conn:
        suppressions.set_instance_policy(conn, cfg.suppression)


def _sources_config(path: str | None, smtp: str | None) -> SourcesConfig:
    from .servers.config import ConfigError, SourcesConfig, host_port, load
    from .servers.smtp import SmtpOptions

    try:
        cfg = load(path) if path else SourcesConfig()
        if smtp:
            h, p = host_port(smtp, 2525, "--smtp")
            cfg = replace(cfg, smtp=replace(cfg.smtp or SmtpOptions(), host=h, port=p))
    except ConfigError as e:
        raise _fail(str(e), 2) from None
    return cfg


@app.command("smtp")
def smtp_command(
    listen: Annotated[
        str | None, typer.Option("--listen", help="HOST:PORT to accept bounces on (default 127.0.0.1:2525).")
    ] = None,
    config: Annotated[str | None, typer.Option("--config", help="TOML config; its [smtp] table is used.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Run the SMTP bounce receiver alone (VERP bounces and feedback-loop mail; never a relay)."""
    from .commands.sources import run_forever
    from .servers.config import SourcesConfig

    cfg = _sources_config(config, listen or (None if config else "127.0.0.1:2525"))
    cfg = SourcesConfig(database_url=cfg.database_url, bounce_domains=cfg.bounce_domains, smtp=cfg.smtp,
                        feedback=cfg.feedback)
    settings = _settings(database or cfg.database_url)
    raise typer.Exit(run_forever(_engine(settings.database_url), settings, cfg))


@app.command("sources")
def sources_command(database: DatabaseOpt = None) -> None:
    """Each bounce source's last success, last error and backlog."""
    from .commands.sources import show

    raise typer.Exit(show(_engine(database)))


@db_app.command("upgrade")
def db_upgrade(database: DatabaseOpt = None) -> None:
    """Apply migrations up to the newest schema."""
    from .store import migrate

    engine = _engine(database)
    typer.echo(f"database at revision {migrate.current(engine)}")


@db_app.command("retention")
def db_retention(
    months: Annotated[int | None, typer.Option(
        "--keep-months", help="Months of the event log kept besides the current one "
        "(default: $MAILTALLY_EVENT_RETENTION_MONTHS).")] = None,
    detach: Annotated[bool, typer.Option(
        "--detach", help="PostgreSQL: keep each removed month as a table events_YYYY_MM_archive.")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Remove the event log's old months (run it daily from cron); statistics are kept."""
    from .store.db import writing
    from .store.partitions import retire
    from .timefmt import iso_ms

    keep = months if months is not None else _settings(database).event_retention_months
    if keep < 1:
        raise _fail("no retention set: give --keep-months N or set MAILTALLY_EVENT_RETENTION_MONTHS (N >= 1)")
    with writing(_engine(database), bulk=True) as conn:
        done = retire(conn, keep, detach=detach)
    for name in done.months:
        typer.echo(f"{'detached' if detach else 'dropped'} {name}")
    if done.rows:
        typer.echo(f"deleted {done.rows:,} events")
    typer.echo(f"the event log keeps events from {iso_ms(done.kept_from)} on")


@db_app.command("copy")
def db_copy(
    to: Annotated[str, typer.Option("--to", help="URL of the (empty) database to copy into.")],
    database: DatabaseOpt = None,
) -> None:
    """Copy everything into another database, e.g. from SQLite to PostgreSQL."""
    from rich.console import Console

    from .store.copy import HitsJournaled, TargetNotEmpty, copy_database
    from .store.db import open_engine

    err = Console(stderr=True)
    with err.status("copying") as status:
        try:
            counts = copy_database(_engine(database), open_engine(to),
                                   lambda table, n: status.update(f"copying {table}: {n:,} rows"))
        except (TargetNotEmpty, HitsJournaled) as e:
            raise _fail(str(e)) from None
    for table, n in counts.items():
        typer.echo(f"{table:20s} {n:>12,}")
    typer.echo(f"copied into {to}; point MAILTALLY_DATABASE_URL at it")


@accounts_app.command("create")
def accounts_create(name: str, database: DatabaseOpt = None) -> None:
    """Create an account (does nothing if it exists)."""
    from .store.accounts import create_account
    from .store.db import writing

    with writing(_engine(database)) as conn:
        account = create_account(conn, name)
    typer.echo(f"account {name} (id {account})")


@accounts_app.command("list")
def accounts_list(database: DatabaseOpt = None) -> None:
    """List accounts."""
    from .store.accounts import list_accounts

    with _engine(database).connect() as conn:
        for account, name in list_accounts(conn):
            typer.echo(f"{account}\t{name}")


@tokens_app.command("create")
def tokens_create(
    account: Annotated[str, typer.Option("--account", help="Account name.")],
    scopes: Annotated[
        str, typer.Option("--scopes", help="Comma-separated: campaign_data,contact_data,ingest,admin.")
    ] = "campaign_data,contact_data,ingest",
    name: Annotated[str, typer.Option(help="A label for the token.")] = "",
    database: DatabaseOpt = None,
) -> None:
    """Create an API token; prints the token alone on stdout (it is not shown again)."""
    from .store.accounts import UnknownAccount, account_id, create_token, parse_scopes

    try:
        wanted = parse_scopes(scopes)
    except ValueError as e:
        raise _fail(str(e)) from None
    from .store.db import writing

    with writing(_engine(database)) as conn:
        try:
            acc = account_id(conn, account)
        except UnknownAccount:
            raise _fail(f"no account named {account!r}; create it with: mailtally accounts create {account}") from None
        token = create_token(conn, acc, wanted, name)
    typer.echo(token)


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The address the user signs in with.")],
    account: Annotated[str, typer.Option("--account", help="Account name.")],
    password: Annotated[str | None, typer.Option(
        help="The password (default: asked for, or read from $MAILTALLY_USER_PASSWORD).",
        envvar="MAILTALLY_USER_PASSWORD")] = None,
    generate: Annotated[bool, typer.Option("--generate", help="Make a random password and print it.")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Create a dashboard user in an account (passwords are kept as argon2 hashes)."""
    import secrets

    from .store.accounts import UnknownAccount
    from .store.db import writing
    from .store.users import UserExists, create_user

    if generate:
        password = secrets.token_urlsafe(12)
    elif password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with writing(_engine(database)) as conn:
        try:
            create_user(conn, account, email, password)
        except UnknownAccount:
            raise _fail(f"no account named {account!r}; create it with: mailtally accounts create {account}") from None
        except (UserExists, ValueError) as e:
            raise _fail(str(e)) from None
    typer.echo(f"user {email.strip().lower()} in account {account}")
    if generate:
        typer.echo(f"password: {password}")


@users_app.command("list")
def users_list(
    account: Annotated[str, typer.Option("--account", help="Account name.")], database: DatabaseOpt = None
) -> None:
    """List an account's dashboard users."""
    from .store.accounts import UnknownAccount
    from .store.users import list_users

    with _engine(database).connect() as conn:
        try:
            for email in list_users(conn, account):
                typer.echo(email)
        except UnknownAccount:
            raise _fail(f"no account named {account!r}") from None


@users_app.command("password")
def users_password(
    email: Annotated[str, typer.Argument(help="The user's address.")],
    password: Annotated[str | None, typer.Option(help="The new password (default: asked for).",
                                                 envvar="MAILTALLY_USER_PASSWORD")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Set a user's password; signs them out everywhere."""
    from .store.db import writing
    from .store.users import set_password

    if password is None:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with writing(_engine(database)) as conn:
        try:
            found = set_password(conn, email, password)
        except ValueError as e:
            raise _fail(str(e)) from None
    if not found:
        raise _fail(f"no user {email}")
    typer.echo(f"password of {email.strip().lower()} changed")


@app.command()
def demo(database: DatabaseOpt = None) -> None:
    """Create the demo account with realistic data (once), and print a token for it."""
    from .demo import ensure_demo

    engine = _engine(database)
    token, created = ensure_demo(engine, progress=True, secret=_settings(database).secret)
    if created:
        typer.echo("demo data created", err=True)
    typer.echo(token)


@app.command()
def ingest(
    path: Annotated[str, typer.Argument(help="NDJSON file of events, or - for stdin.")],
    account: Annotated[str, typer.Option("--account", help="Account name.")],
    batch_size: Annotated[int, typer.Option(help="Events per transaction.")] = 5000,
    database: DatabaseOpt = None,
) -> None:
    """Record events from an NDJSON file (same validation as POST /v1/events).

    Each batch is all-or-nothing; replaying a file records nothing twice.
    """
    from .commands.ingest_events import run

    engine = _engine(database)
    code = run(engine, account, path, batch_size)
    raise typer.Exit(code)


@bounces_app.command("parse", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bounces_parse(
    ctx: typer.Context,
    paths: Annotated[list[str] | None, typer.Argument(help="Message files, Maildirs, mboxes, or - for stdin.")] = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per record.")] = False,
    bounces_only: Annotated[
        bool, typer.Option("--bounces-only", help="Omit the records of reports that say \"delivered\".")
    ] = False,
) -> None:
    """Find who bounced and why in bounce messages."""
    from .commands.bounces_parse import run

    flags = [*(["--jsonl"] if jsonl else []), *(["--bounces-only"] if bounces_only else [])]
    raise typer.Exit(run([*flags, *(paths or []), *ctx.args]))


@bounces_app.command("ingest")
def bounces_ingest(
    paths: Annotated[list[str], typer.Argument(help="Message files, Maildirs, mboxes, or - for stdin.")],
    account: Annotated[str, typer.Option("--account", help="Account name.")],
    database: DatabaseOpt = None,
) -> None:
    """Record bounce messages as bounce events of the sends they belong to (unmatched ones are kept)."""
    from .commands.bounces_ingest import run

    settings = _settings(database)
    raise typer.Exit(run(_engine(database), account, paths, settings.secret))


@messages_app.command("render")
def messages_render(
    activity: Annotated[str, typer.Option("--activity", help="Campaign activity id.")],
    to: Annotated[list[str], typer.Option("--to", help="Recipient address (repeat for more).")],
    html: Annotated[Path | None, typer.Option("--html", help="HTML body file.")] = None,
    text: Annotated[Path | None, typer.Option("--text", help="Plain-text body file.")] = None,
    record_send: Annotated[bool, typer.Option("--record-send", help="Record the sends as well.")] = False,
    account: Annotated[str | None, typer.Option("--account", help="Account name (to be sure).")] = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per recipient.")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Print each recipient's message: tracked links, open pixel, unsubscribe headers."""
    from .commands.messages_render import run

    if html is None and text is None:
        raise _fail("give --html FILE, --text FILE or both")
    raise typer.Exit(run(_engine(database), _settings(database), activity, html, text, to, record_send, account,
                         jsonl))


@tracking_app.command("keys")
def tracking_keys(database: DatabaseOpt = None) -> None:
    """List the tracking key ids; the highest signs new links."""
    from .store.tracking_keys import key_ids

    with _engine(database).connect() as conn:
        ids = key_ids(conn)
    for kid in ids:
        typer.echo(f"{kid}{'  (signs new links)' if kid == ids[-1] else ''}")


@tracking_app.command("status")
def tracking_status(database: DatabaseOpt = None,
                    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, as /healthz shows it.")]
                    = False) -> None:
    """Whether answered hits reach the log in time (exit 1 when behind: for a cron job or a monitor)."""
    import json

    from .api.tracking import health_of
    from .vocab import Health

    health, waits = health_of(_engine(database), _settings(database))
    if as_json:
        typer.echo(json.dumps({"status": health.value, **({"tracking": waits} if waits is not None else {})}))
    elif waits is None:
        typer.echo("ok: on PostgreSQL each hit is in the log when it is answered; none waits")
    else:
        waited = waits["oldest_waiting_seconds"]
        typer.echo(f"{health.value}: " + ("no answered hit waits for the log" if waited is None else
                   f"{waits['waiting_bytes']:,} bytes of hits wait for the log, the oldest answered {waited:.1f} s "
                   f"ago (behind after {waits['max_behind_seconds']:g} s)"))
        if waits["roll_up_error"] is not None:
            typer.echo(f"the roll-up has failed since {waits['roll_up_failing_since']}: {waits['roll_up_error']}")
    if health is not Health.OK:
        raise typer.Exit(1)


@tracking_app.command("rotate-key")
def tracking_rotate(database: DatabaseOpt = None) -> None:
    """Start signing with a new key; links already sent keep working."""
    from .store.db import writing
    from .store.tracking_keys import rotate

    with writing(_engine(database)) as conn:
        kid = rotate(conn)
    typer.echo(f"key {kid} signs new tracking links; older keys still verify")


@tracking_app.command("retire-key")
def tracking_retire(kid: Annotated[int, typer.Argument(help="Key id (see `mailtally tracking keys`).")],
                    database: DatabaseOpt = None) -> None:
    """Forget an old key: links it signed stop working."""
    from .store.db import writing
    from .store.tracking_keys import retire

    with writing(_engine(database)) as conn:
        try:
            done = retire(conn, kid)
        except ValueError as e:
            raise _fail(str(e)) from None
    if not done:
        raise _fail(f"no key {kid}")
    typer.echo(f"key {kid} retired")
@webhooks_app.command("add")
def webhooks_add(
    provider: Annotated[str, typer.Argument(help="ses, sendgrid, mailgun, postmark, sparkpost, brevo or resend.")],
    account: Annotated[str, typer.Option("--account", help="Account name.")],
    secret: Annotated[str, typer.Option(help="What the provider signs or authenticates with (see docs/webhooks.md).")
                      ] = "",
    topic_arn: Annotated[list[str] | None, typer.Option("--topic-arn", help="SES: an SNS topic ARN to accept "
                                                        "(repeat for several).")] = None,
    username: Annotated[str | None, typer.Option(help="Basic-auth user name (default: mailtally).")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Create a provider webhook endpoint; prints the URL to paste into the provider."""
    from .commands.webhooks import add
    from .vocab import WebhookProvider

    if provider not in {p.value for p in WebhookProvider}:
        raise _fail(f"unknown provider {provider!r}; one of: {', '.join(p.value for p in WebhookProvider)}", 2)
    settings = _settings(database)
    raise typer.Exit(add(_engine(database), settings.base_url, account, provider, secret, username,
                         list(topic_arn or [])))


@webhooks_app.command("list")
def webhooks_list(account: Annotated[str, typer.Option("--account", help="Account name.")],
                  database: DatabaseOpt = None) -> None:
    """List an account's webhook endpoints and their URLs."""
    from .commands.webhooks import list_all

    raise typer.Exit(list_all(_engine(database), _settings(database).base_url, account))


@webhooks_app.command("remove")
def webhooks_remove(endpoint_id: str, account: Annotated[str, typer.Option("--account", help="Account name.")],
                    database: DatabaseOpt = None) -> None:
    """Remove a webhook endpoint: its URL answers 404 from then on."""
    from .commands.webhooks import remove

    raise typer.Exit(remove(_engine(database), account, endpoint_id))


AccountOpt = Annotated[str, typer.Option("--account", help="Account name.")]


@bounces_app.command("reclassify")
def bounces_reclassify(account: AccountOpt, database: DatabaseOpt = None,
                       dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, change nothing.")] = False,
                       ) -> None:
    """Re-read every stored bounce message with today's engine and correct what it reads differently."""
    from .commands.suppressions import reclassify

    raise typer.Exit(reclassify(_engine(database), account, dry_run, _settings(database).secret))


@suppressions_app.command("import")
def suppressions_import(path: Annotated[str, typer.Argument(help="CSV file (email,reason,...), or - for stdin.")],
                        account: AccountOpt, database: DatabaseOpt = None) -> None:
    """Add entries from CSV; a bad line stops the import, naming it, with nothing imported."""
    from .commands.suppressions import import_csv

    raise typer.Exit(import_csv(_engine(database), account, path))


@suppressions_app.command("export")
def suppressions_export(account: AccountOpt, database: DatabaseOpt = None,
                        output: Annotated[str, typer.Option("--output", "-o", help="File, or - for stdout.")] = "-",
                        ) -> None:
    """Write the live list as CSV."""
    from .commands.suppressions import export_csv

    raise typer.Exit(export_csv(_engine(database), account, output))


@suppressions_app.command("policy")
def suppressions_policy(account: AccountOpt,
                        changes: Annotated[list[str] | None, typer.Argument(help="field=value, e.g. soft_count=5")]
                        = None, database: DatabaseOpt = None) -> None:
    """Show the account's suppression policy, or change fields of it."""
    from .commands.suppressions import policy

    raise typer.Exit(policy(_engine(database), account, changes or []))
@bounces_app.command("classify")
def bounces_classify(
    reply: Annotated[str, typer.Argument(help='The SMTP reply, e.g. "550 5.1.1 <a@b>: Recipient address rejected".')],
    jsonl: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The bounce reason (and code) of an SMTP reply seen at send time or in a log."""
    import json

    from .bounces.replies import classify_reply
    from .vocab import bounce_code_for

    parts, found = classify_reply(reply)
    code = bounce_code_for(found)
    out = {"reason": found.value, "bounce_code": code.value if code else None, "reply_code": parts.reply_code,
           "status": parts.status, "command": parts.command, "diagnostic": parts.diagnostic}
    if jsonl:
        typer.echo(json.dumps(out))
    else:
        typer.echo(f"{found.value}\t{code.value if code else '-'}\t{parts.reply_code or '-'}\t{parts.status or '-'}")
    raise typer.Exit(0 if code else 1)


@logs_app.command("ingest")
def logs_ingest(
    path: Annotated[str, typer.Argument(help="The log file, or - for standard input.")],
    account: Annotated[str, typer.Option("--account", help="Account name.")],
    follow: Annotated[bool, typer.Option("--follow", help="Keep reading as it grows; survives rotation.")] = False,
    log_format: Annotated[str, typer.Option("--format", help="postfix, exim or auto.")] = "auto",
    name: Annotated[
        str | None, typer.Option("--name", help="The source's name (its checkpoint's key).")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Bounces (and deferrals) from Postfix or Exim log lines; resumes where it stopped, counts nothing twice."""
    from .commands.logs_ingest import run

    raise typer.Exit(run(_engine(database), _settings(database), path, account, follow, log_format, name))


@mailbox_app.command("watch")
def mailbox_watch(
    url: Annotated[str, typer.Argument(help="imaps://USER[:PASS]@HOST[:PORT]/FOLDER, imap://…, "
                                        "pop3s://USER[:PASS]@HOST[:PORT], pop3://…, maildir:///PATH or mbox:///PATH.")],
    account: Annotated[str, typer.Option("--account", help="Account name.")],
    once: Annotated[bool, typer.Option("--once", help="Read what is there now, then stop.")] = False,
    move_to: Annotated[str, typer.Option("--move-to", help="Folder for messages with bounces.")] = "Bounces",
    other_to: Annotated[
        str | None, typer.Option("--other-to", help="Folder for messages that are not bounces (default: leave them).")
    ] = None,
    delete_handled: Annotated[
        bool, typer.Option("--delete-handled", help="Delete messages with bounces instead of moving them.")
    ] = False,
    password_env: Annotated[
        str, typer.Option("--password-env", help="Environment variable holding the IMAP or POP3 password.")
    ] = "MAILTALLY_MAILBOX_PASSWORD",
    name: Annotated[str | None, typer.Option("--name", help="The source's name (its checkpoint's key).")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Record the bounces in a mailbox; move only what was recorded, leave everything else as it was."""
    from .commands.mailbox_watch import run

    raise typer.Exit(run(_engine(database), _settings(database), url, account, once=once, move_to=move_to,
                         other_to=other_to, delete_handled=delete_handled, password_env=password_env, name=name))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
