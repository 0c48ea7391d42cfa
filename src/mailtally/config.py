"""Settings, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_DATABASE_URL = "sqlite:///mailtally.db"
# Numeric settings read from MAILTALLY_<NAME> when set.
_NUMBERS: dict[str, type[int] | type[float]] = {
    "max_body_bytes": int, "max_request_bytes": int, "max_header_bytes": int, "max_token_bytes": int,
    "headers_seconds": float, "body_idle_seconds": float, "body_seconds": float, "max_connections": int,
    "write_wait_seconds": float, "event_retention_months": int, "tracking_max_behind_seconds": float,
}


class SecretFileError(ValueError):
    pass


def read_secret_file(path: str) -> str:
    """The signing secret from a file (a Docker or systemd credential, say): its first line."""
    try:
        with open(path, encoding="utf-8") as f:
            value = f.readline().strip()
    except OSError as e:
        raise SecretFileError(f"MAILTALLY_SECRET_FILE {path}: {e.strerror}") from None
    if len(value) < 16:
        raise SecretFileError(f"MAILTALLY_SECRET_FILE {path}: the secret must be at least 16 characters")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # Report queries go here when set (a streaming replica of database_url); writes never do.
    read_database_url: str | None = None
    secret: str | None = None  # None: one is made and kept in the database
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_events: int = 10_000
    max_body_bytes: int = 20 * 1024 * 1024
    public_url: str | None = None  # the address recipients reach: tracking links are made from it
    # Raw bounce messages: how much of each is kept, and for how long (store/raw_messages.py).
    raw_message_max_bytes: int = 1024 * 1024
    raw_message_retention_days: int = 90
    # The event log: months kept besides the current one by `mailtally db retention`; 0 keeps all.
    event_retention_months: int = 0
    # Tracking (docs/tracking.md): how much of a hit's IP the log keeps (vocab.IpStorage), hits
    # within this many seconds of the send judged machine, extra scanner networks (CIDRs, comma
    # separated; "none" drops the built-in list), and how long a hit waits to share a commit.
    tracking_ip: str = "truncated"
    too_soon_seconds: float = 10.0
    scanner_networks: str = "default"
    group_commit_ms: float = 0.0
    # /healthz says "behind" (503) once a hit answered this long ago is not in the log yet (SQLite).
    tracking_max_behind_seconds: float = 60.0
    bounce_domain: str | None = None  # VERP Return-Path domain; default: public_url's host
    # Outgoing webhooks (webhooks/worker.py): the delivery worker runs inside serve.
    webhook_worker: bool = True
    webhook_allow_private: bool = False  # allow loopback and private-network targets (tests, an intranet)
    webhook_timeout_seconds: float = 10.0
    webhook_poll_seconds: float = 1.0
    # Provider webhooks: how far a signature's timestamp may be from now, either way (seconds).
    webhook_tolerance_seconds: int = 300
    # Mailgun's window: its retries run for 8 hours and may carry the first signature; a token is
    # refused a second time whatever its age, so a long window costs only the kept tokens.
    mailgun_tolerance_seconds: int = 9 * 3600
    # Provider webhooks: URL prefixes trusted for SNS certificates and confirmation links besides
    # https://sns.<region>.amazonaws.com/ (a local test server, a proxy); empty in production.
    sns_url_prefixes: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    # Domains of our VERP return paths (bounces+mt…@domain): the SMTP receiver accepts mail for these only.
    bounce_domains: tuple[str, ...] = ()
    # Hardening (docs/install.md, "Running in production"). Body limits of routes that name
    # none of their own; header and credential sizes; how long a client may take.
    max_request_bytes: int = 1024 * 1024
    max_header_bytes: int = 32 * 1024
    max_token_bytes: int = 2048
    headers_seconds: float = 10.0  # to send the request line and headers
    body_idle_seconds: float = 15.0  # between two parts of a body
    body_seconds: float = 120.0  # for a whole body
    max_connections: int = 1000  # per worker process; more get a 503
    write_wait_seconds: float = 30.0  # a write waiting this long for the database answers 503
    secret_file: str | None = None  # the signing secret read from this file (kept out of the database)
    # FastAPI's native OpenTelemetry (spans and metrics to the global providers): off unless asked
    # for, since asking whether any provider is configured costs on every request.
    telemetry: bool = False

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {
            "database_url": env.get("MAILTALLY_DATABASE_URL", DEFAULT_DATABASE_URL),
            "read_database_url": env.get("MAILTALLY_READ_DATABASE_URL") or None,
            "secret": env.get("MAILTALLY_SECRET") or None,
            "host": env.get("MAILTALLY_HOST", "127.0.0.1"),
            "port": int(env.get("MAILTALLY_PORT", "8000")),
            "max_batch_events": int(env.get("MAILTALLY_MAX_BATCH_EVENTS", "10000")),
            "public_url": env.get("MAILTALLY_PUBLIC_URL") or None,
            "raw_message_max_bytes": int(env.get("MAILTALLY_RAW_MESSAGE_MAX_BYTES", str(1024 * 1024))),
            "webhook_worker": env.get("MAILTALLY_WEBHOOK_WORKER", "1") != "0",
            "webhook_allow_private": env.get("MAILTALLY_WEBHOOK_ALLOW_PRIVATE", "0") == "1",
            "webhook_timeout_seconds": float(env.get("MAILTALLY_WEBHOOK_TIMEOUT_SECONDS", "10")),
            "webhook_poll_seconds": float(env.get("MAILTALLY_WEBHOOK_POLL_SECONDS", "1")),
            "raw_message_retention_days": int(env.get("MAILTALLY_RAW_MESSAGE_RETENTION_DAYS", "90")),
            "tracking_ip": env.get("MAILTALLY_TRACKING_IP", "truncated"),
            "too_soon_seconds": float(env.get("MAILTALLY_TOO_SOON_SECONDS", "10")),
            "scanner_networks": env.get("MAILTALLY_SCANNER_NETWORKS", "default"),
            "group_commit_ms": float(env.get("MAILTALLY_GROUP_COMMIT_MS", "0")),
            "bounce_domain": env.get("MAILTALLY_BOUNCE_DOMAIN") or None,
            "bounce_domains": tuple(d.strip() for d in env.get("MAILTALLY_BOUNCE_DOMAINS", "").split(",") if d.strip()),
            "secret_file": env.get("MAILTALLY_SECRET_FILE") or None,
            "telemetry": env.get("MAILTALLY_TELEMETRY", "0") == "1",
            "webhook_tolerance_seconds": int(env.get("MAILTALLY_WEBHOOK_TOLERANCE_SECONDS", "300")),
            "mailgun_tolerance_seconds": int(env.get("MAILTALLY_MAILGUN_TOLERANCE_SECONDS", str(9 * 3600))),
            "sns_url_prefixes": tuple(p.strip() for p in env.get("MAILTALLY_SNS_URL_PREFIXES", "").split(",")
                                      if p.strip()),
        }
        for name, kind in _NUMBERS.items():
            raw = env.get("MAILTALLY_" + name.upper())
            if raw:
                values[name] = kind(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if not values["secret"] and values["secret_file"]:
            values["secret"] = read_secret_file(str(values["secret_file"]))
        return cls(**values)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
