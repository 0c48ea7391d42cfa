"""The config file of ``mailtally serve --config FILE``: the API, the SMTP listener, mailboxes, logs.

TOML (read with ``tomllib``), documented in docs/sources.md. Everything is checked when the
file is read, so a typo stops the start with the key's name instead of surfacing later.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .smtp import SmtpOptions

LOG_FORMATS = ("auto", "postfix", "exim")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    url: str  # imaps://user@host/INBOX, imap://…, maildir:///path, mbox:///path
    account: str
    name: str = ""
    password: str | None = None
    password_env: str | None = None  # the password read from this environment variable instead
    move_to: str = "Bounces"  # where a message with bounce records goes once its events are committed
    other_to: str | None = None  # where a message that is not a bounce goes; None leaves it as it was
    delete_handled: bool = False
    poll_seconds: float = 60.0  # maildir and mbox; IMAP waits in IDLE when the server has it
    idle_renew_seconds: float = 540.0  # IMAP IDLE ended and begun again this often (RFC 2177: under 29 minutes)


@dataclass(frozen=True, slots=True)
class LogConfig:
    path: str
    account: str
    name: str = ""
    format: str = "auto"


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    database_url: str | None = None
    api_host: str | None = None
    api_port: int | None = None
    bounce_domains: tuple[str, ...] = ()
    smtp: SmtpOptions | None = None
    feedback: dict[str, str] = field(default_factory=dict)  # feedback-loop address -> account name
    mailboxes: tuple[MailboxConfig, ...] = ()
    logs: tuple[LogConfig, ...] = ()
    # [suppression]: the instance-wide default policy (fields of suppression.policy.Policy);
    # each account's changes (PUT /v1/suppressions/policy) override it field by field.
    suppression: dict[str, Any] | None = None


def _take(table: dict[str, Any], cls: type, where: str, hidden: tuple[str, ...] = ()) -> dict[str, Any]:
    known = {f.name: f for f in fields(cls) if f.name not in hidden}
    out: dict[str, Any] = {}
    for name, value in table.items():
        key = name
        if name not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        kind = str(known[name].type)
        if ("float" in kind and not isinstance(value, int | float)) or ("int" in kind and "float" not in kind
                                                                        and not isinstance(value, int)):
            raise ConfigError(f"{where}.{key}: must be a number")
        if kind.startswith("str") and not isinstance(value, str):
            raise ConfigError(f"{where}.{key}: must be a string")
        if kind == "bool" and not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}: must be true or false")
        out[name] = value
    return out


def host_port(text: str, default_port: int, where: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: {text!r} is not HOST:PORT")
    return host, int(port)


def parse(data: dict[str, Any], where: str = "config") -> SourcesConfig:
    top = {"database_url", "bounce_domains", "api", "smtp", "mailbox", "log", "suppression"}
    for key in data:
        if key not in top:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(top))})")
    out: dict[str, Any] = {}
    if "database_url" in data:
        if not isinstance(data["database_url"], str):
            raise ConfigError(f"{where}.database_url: must be a string")
        out["database_url"] = data["database_url"]
    domains = data.get("bounce_domains", [])
    if isinstance(domains, str):
        domains = [d for d in domains.split(",")]
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise ConfigError(f"{where}.bounce_domains: must be a list of domains")
    out["bounce_domains"] = tuple(d.strip().lower() for d in domains if d.strip())
    api = data.get("api", {})
    if not isinstance(api, dict) or set(api) - {"listen"}:
        raise ConfigError(f"{where}.api: only 'listen = \"HOST:PORT\"' is known")
    if "listen" in api:
        out["api_host"], out["api_port"] = host_port(str(api["listen"]), 8000, f"{where}.api.listen")
    if "smtp" in data:
        smtp = dict(data["smtp"]) if isinstance(data["smtp"], dict) else None
        if smtp is None:
            raise ConfigError(f"{where}.smtp: must be a table")
        feedback = smtp.pop("feedback", {})
        if not isinstance(feedback, dict) or not all(isinstance(v, str) for v in feedback.values()):
            raise ConfigError(f"{where}.smtp.feedback: must map addresses to account names")
        out["feedback"] = {k.lower(): v for k, v in feedback.items()}
        listen = smtp.pop("listen", "127.0.0.1:2525")
        host, port = host_port(str(listen), 2525, f"{where}.smtp.listen")
        opts = _take(smtp, SmtpOptions, f"{where}.smtp", hidden=("host", "port", "keep_bytes"))
        if bool(opts.get("tls_cert")) != bool(opts.get("tls_key")) and opts.get("tls_key"):
            raise ConfigError(f"{where}.smtp: tls_key needs tls_cert")
        out["smtp"] = SmtpOptions(host=host, port=port, **opts)
    if "suppression" in data:
        out["suppression"] = _policy(data["suppression"], f"{where}.suppression")
    mailboxes = []
    for i, box in enumerate(_tables(data.get("mailbox", []), f"{where}.mailbox")):
        at = f"{where}.mailbox[{i}]"
        values = _take(box, MailboxConfig, at)
        for required in ("url", "account"):
            if required not in values:
                raise ConfigError(f"{at}: {required!r} is required")
        values.setdefault("name", f"mailbox:{values['url']}")
        if not 0 < values.get("idle_renew_seconds", 540) <= 600:
            raise ConfigError(f"{at}.idle_renew_seconds: must be above 0 and at most 600 (10 minutes)")
        if not values.get("poll_seconds", 60) > 0:
            raise ConfigError(f"{at}.poll_seconds: must be above 0")
        mailboxes.append(MailboxConfig(**values))
    logs = []
    for i, log in enumerate(_tables(data.get("log", []), f"{where}.log")):
        at = f"{where}.log[{i}]"
        values = _take(log, LogConfig, at)
        for required in ("path", "account"):
            if required not in values:
                raise ConfigError(f"{at}: {required!r} is required")
        if values.get("format", "auto") not in LOG_FORMATS:
            raise ConfigError(f"{at}.format: must be one of {', '.join(LOG_FORMATS)}")
        values.setdefault("name", f"log:{values['path']}")
        logs.append(LogConfig(**values))
    names = [m.name for m in mailboxes] + [x.name for x in logs] + ([out["smtp"].name] if "smtp" in out else [])
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"{where}: two sources are named {sorted(dup)[0]!r}; give each its own name")
    return SourcesConfig(mailboxes=tuple(mailboxes), logs=tuple(logs), **out)


def _policy(value: Any, where: str) -> dict[str, Any]:
    from ..suppression.policy import Policy, PolicyError

    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a table")
    try:
        Policy.from_dict(value)
    except PolicyError as e:
        raise ConfigError(f"{where}.{e.field}: {e.message}") from None
    return dict(value)


def _tables(value: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: must be [[{where.rpartition('.')[2]}]] tables")
    return value


def load(path: str | Path) -> SourcesConfig:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read {p}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p} is not valid TOML: {e}") from None
    return parse(data, p.name)
