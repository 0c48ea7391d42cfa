"""The tables. Every key leads with ``account_id`` so the schema distributes by account.

Times are integers: UTC milliseconds since the epoch. Each API dialect formats its own.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

Ms = BigInteger  # UTC milliseconds since the epoch

instance = Table(
    "instance",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", Ms, nullable=False),
    # Per-account id allocators: numeric ids for APIs that use integers, and event ids.
    Column("seq_contact", BigInteger, nullable=False, default=0),
    Column("seq_campaign", BigInteger, nullable=False, default=0),
    Column("seq_activity", BigInteger, nullable=False, default=0),
    Column("seq_event", BigInteger, nullable=False, default=0),
    # Which machine opens and clicks the vendor surfaces count (vocab.MachineCounting).
    Column("count_machine_opens", String(8), nullable=False, default="proxy", server_default="proxy"),
    Column("count_machine_clicks", String(8), nullable=False, default="none", server_default="none"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("token_hash", String(64), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("scopes", String(200), nullable=False),
    Column("created_at", Ms, nullable=False),
    Index("ix_api_tokens_hash", "token_hash", unique=True),
)

contacts = Table(
    "contacts",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("id", String(36), primary_key=True),
    Column("num_id", BigInteger, nullable=False),
    Column("email", String(320), nullable=False),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("company_name", String(200)),
    Column("job_title", String(200)),
    Column("phone", String(64)),
    Column("street", String(400)),
    Column("city", String(200)),
    Column("state", String(200)),
    Column("postal_code", String(64)),
    Column("country", String(200)),
    Column("custom_fields", JSON, nullable=False, default=dict),
    Column("created_at", Ms, nullable=False),
    Column("updated_at", Ms, nullable=False),
    Column("deleted_at", Ms),
    UniqueConstraint("account_id", "num_id", name="uq_contacts_num"),
    UniqueConstraint("account_id", "email", name="uq_contacts_email"),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("id", String(36), primary_key=True),
    Column("num_id", BigInteger, nullable=False),
    Column("name", String(400), nullable=False),
    Column("type", String(64), nullable=False, default="Newsletter"),
    Column("status", String(32), nullable=False, default="Draft"),
    Column("created_at", Ms, nullable=False),
    Column("updated_at", Ms, nullable=False),
    Column("last_sent_at", Ms),
    UniqueConstraint("account_id", "num_id", name="uq_campaigns_num"),
    Index("ix_campaigns_recent", "account_id", "last_sent_at", "num_id"),
)

activities = Table(
    "activities",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("id", String(36), primary_key=True),
    Column("num_id", BigInteger, nullable=False),
    Column("campaign_id", String(36), nullable=False),
    Column("role", String(32), nullable=False, default="primary_email"),
    Column("status", String(32), nullable=False, default="Draft"),
    Column("subject", String(998), nullable=False, default=""),
    Column("from_name", String(200), nullable=False, default=""),
    Column("from_email", String(320), nullable=False, default=""),
    Column("created_at", Ms, nullable=False),
    Column("updated_at", Ms, nullable=False),
    UniqueConstraint("account_id", "num_id", name="uq_activities_num"),
    Index("ix_activities_campaign", "account_id", "campaign_id"),
)

links = Table(
    "links",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("activity_id", String(36), primary_key=True),
    Column("url_id", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("link_tag", String(200)),
)

# The append-only log: one row per thing that happened.
#
# Clustered on (activity, type, time, idem): the reports read one activity's events of one
# type newest first straight off the table, inserts land near the end of a handful of runs,
# and the primary key is also the idempotency check. ``idem`` is a 64-bit hash of the
# event's content (or of the caller's key, which ``event_keys`` also holds). Activities and
# contacts are referenced by their per-account numeric ids: 8-byte keys instead of 36.
events = Table(
    "events",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("activity_num", BigInteger, primary_key=True),
    Column("type", String(16), primary_key=True),
    Column("occurred_at", Ms, primary_key=True),
    Column("idem", BigInteger, primary_key=True, autoincrement=False),
    Column("id", BigInteger, nullable=False),  # arrival order: snapshots read "as of" an id
    Column("contact_num", BigInteger, nullable=False),
    Column("device_type", String(16)),
    Column("url_id", String(64)),
    Column("reason", String(32)),
    Column("bounce_code", String(1)),
    Column("hard", Boolean),
    Column("dsn_status", String(16)),
    Column("reply_code", String(8)),
    Column("diagnostic", Text),
    Column("remote_mta", String(255)),
    Column("optout_source", String(64)),
    Column("optout_reason", Text),
    # Opens and clicks from the tracking endpoints: who fetched, and the machine verdict.
    Column("user_agent", Text),
    Column("ip", String(45)),  # as the instance's ip_storage setting keeps it
    Column("since_send_s", BigInteger),
    Column("verdict", String(8)),
    Column("verdict_why", String(24)),
    # TRUE: a machine hit the account's counting policy keeps out of the vendor surfaces (their
    # counters and their event lists alike); NULL for everything counted.
    Column("uncounted", Boolean),
    Index("ix_events_contact", "account_id", "contact_num", "occurred_at", "idem"),
    # Account-wide bounce reports (Zoho, WhatCounts) by time; partial, so other events skip it.
    Index("ix_events_bounce_time", "account_id", "occurred_at", "idem",
          sqlite_where=text("type = 'bounce'"), postgresql_where=text("type = 'bounce'")),
    # The dashboard's bounces: an activity's by reason read off this index alone, and the
    # account's filtered by reason or by code, newest first, without reading the others.
    Index("ix_events_bounce_reason", "account_id", "activity_num", "reason", "bounce_code",
          sqlite_where=text("type = 'bounce'"), postgresql_where=text("type = 'bounce'")),
    Index("ix_events_bounce_reason_time", "account_id", "reason", "occurred_at", "idem",
          sqlite_where=text("type = 'bounce'"), postgresql_where=text("type = 'bounce'")),
    Index("ix_events_bounce_code_time", "account_id", "bounce_code", "occurred_at", "idem",
          sqlite_where=text("type = 'bounce'"), postgresql_where=text("type = 'bounce'")),
    # Tracked opens and clicks by verdict (the dashboard's human and machine lists); other events skip it.
    Index("ix_events_verdict", "account_id", "activity_num", "type", "verdict", "occurred_at", "idem",
          sqlite_where=text("verdict IS NOT NULL"), postgresql_where=text("verdict IS NOT NULL")),
    sqlite_with_rowid=False,
    # One partition a month on PostgreSQL, made as events need them (store/partitions.py).
    postgresql_partition_by="RANGE (occurred_at)",
)

# Idempotency keys the caller chose (hashed): unique per account whatever the event says.
event_keys = Table(
    "event_keys",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("key_hash", BigInteger, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# One row per (activity, contact) that anything happened to: answers unique opens and
# did-not-opens without scanning the log.
recipients = Table(
    "recipients",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("activity_num", BigInteger, primary_key=True, autoincrement=False),
    Column("contact_num", BigInteger, primary_key=True, autoincrement=False),
    Column("sent_at", Ms),
    Column("first_open_at", Ms),
    Column("last_open_at", Ms),
    Column("last_open_device", String(16)),
    Column("opens", Integer, nullable=False, default=0, server_default="0"),
    Column("clicks", Integer, nullable=False, default=0, server_default="0"),
    Column("forwards", Integer, nullable=False, default=0, server_default="0"),
    Column("optout_at", Ms),
    Column("abuse_at", Ms),
    Column("bounced_at", Ms),
    Column("bounce_code", String(1)),
    Index("ix_recipients_sent", "account_id", "activity_num", "sent_at", "contact_num"),
    Index("ix_recipients_opened", "account_id", "activity_num", "last_open_at", "contact_num",
          sqlite_where=text("last_open_at IS NOT NULL"), postgresql_where=text("last_open_at IS NOT NULL")),
    sqlite_with_rowid=False,
)

# Per-activity counters, kept in the same transaction as the events: stats cost O(1).
COUNTER_COLUMNS: tuple[str, ...] = (
    "sends",
    "opens",  # unique
    "opens_all",
    "opens_computer",
    "opens_mobile",
    "opens_tablet",
    "opens_other",
    "opens_none",
    "clicks",  # unique contacts that clicked
    "clicks_all",
    "clicks_computer",
    "clicks_mobile",
    "clicks_tablet",
    "clicks_other",
    "clicks_none",
    "forwards",
    "optouts",
    "abuse",
    "bounces",
    "bounces_b",
    "bounces_d",
    "bounces_f",
    "bounces_s",
    "bounces_v",
    "bounces_x",
    "bounces_z",
    "not_opened",
    # Tracked hits by verdict, whatever the vendor surfaces count.
    "opens_human",
    "opens_machine",
    "clicks_human",
    "clicks_machine",
)

activity_counters = Table(
    "activity_counters",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("activity_id", String(36), primary_key=True),
    *(Column(name, BigInteger, nullable=False, default=0) for name in COUNTER_COLUMNS),
    Column("last_event_at", Ms),
    Column("updated_at", Ms, nullable=False),
)

# Unique clicks per link.
link_counters = Table(
    "link_counters",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("activity_id", String(36), primary_key=True),
    Column("url_id", String(64), primary_key=True),
    Column("clicks_all", BigInteger, nullable=False, default=0),
    Column("unique_clicks", BigInteger, nullable=False, default=0),
)

# Which (contact, link) pairs have clicked, so unique clicks per link stay exact.
link_clickers = Table(
    "link_clickers",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("activity_id", String(36), primary_key=True),
    Column("url_id", String(64), primary_key=True),
    Column("contact_id", String(36), primary_key=True),
)

# Bounces that matched no send: kept and listed, never dropped.
unmatched_bounces = Table(
    "unmatched_bounces",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("id", BigInteger, primary_key=True),
    Column("received_at", Ms, nullable=False),
    Column("message_key", String(64), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("bounce_code", String(1)),
    Column("dsn_status", String(16)),
    Column("reply_code", String(8)),
    Column("diagnostic", Text),
    Column("remote_mta", String(255)),
    Column("original_message_id", String(998)),
    Column("original_subject", String(998)),
    Column("raw_message_id", BigInteger),  # the stored message it came from (raw_messages.id)
    UniqueConstraint("account_id", "message_key", "recipient", name="uq_unmatched_message"),
)

# Every bounce message received, zlib-compressed, once per account and content hash; cut to a
# size cap (``truncated``) and deleted after the retention period. Bodies stay out of the log.
raw_messages = Table(
    "raw_messages",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("sha256", String(64), nullable=False),
    Column("received_at", Ms, nullable=False),
    Column("source", String(32), nullable=False),
    Column("envelope_to", String(320)),
    Column("size", BigInteger, nullable=False),  # bytes as received
    Column("truncated", Boolean, nullable=False, default=False),
    Column("records", Integer, nullable=False, default=0),  # what the engine found at ingest
    Column("body", LargeBinary, nullable=False),  # zlib of the (capped) message
    UniqueConstraint("account_id", "sha256", name="uq_raw_messages_hash"),
    Index("ix_raw_messages_received", "account_id", "received_at", "id"),
)

# Which logged events each stored message produced: a pointer to the log's primary key, so the
# writer's hot rows stay as they are. Indexed both ways: message -> events, event -> message.
raw_message_events = Table(
    "raw_message_events",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("raw_message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("activity_num", BigInteger, primary_key=True, autoincrement=False),
    Column("idem", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String(16), nullable=False),
    Column("occurred_at", Ms, nullable=False),
    Column("contact_num", BigInteger, nullable=False),
    Column("recipient", String(320), nullable=False),
    Index("ix_raw_message_events_event", "account_id", "activity_num", "idem"),
    sqlite_with_rowid=False,
)

# Friends' addresses given on the forward page, kept for the sender (mailtally sends nothing).
forward_addresses = Table(
    "forward_addresses",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("activity_num", BigInteger, primary_key=True, autoincrement=False),
    Column("contact_num", BigInteger, primary_key=True, autoincrement=False),
    Column("friend_email", String(320), primary_key=True),
    Column("forwarded_at", Ms, nullable=False),
)

# The suppression list: addresses not to mail, why, since when, until when, and the event
# that put them there (by the log's key, so a corrected bounce can lift what it caused).
suppressions = Table(
    "suppressions",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("suppressed_at", Ms, nullable=False),
    Column("created_at", Ms, nullable=False),
    Column("expires_at", Ms),
    Column("activity_num", BigInteger),
    Column("idem", BigInteger),
    Column("note", Text),
    # By reason in address order (a filtered page), and covering the live count by reason (the
    # dashboard's figures read it off the index, never the rows): migration 0012.
    Index("ix_suppressions_reason_live", "account_id", "reason", "email", "expires_at"),
    Index("ix_suppressions_cause", "account_id", "activity_num", "idem"),
    sqlite_with_rowid=False,
)

# Per-account choices over the defaults (``suppression.policy.Policy``, ``alerts.rules``).
account_policies = Table(
    "account_policies",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("suppression", JSON),
    Column("alerts", JSON),
    Column("updated_at", Ms, nullable=False),
)

# Alerts fired: one live row per (activity, kind) until someone re-arms it.
alerts = Table(
    "alerts",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("activity_id", String(36), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("rate", Float, nullable=False),  # percent
    Column("threshold", Float, nullable=False),
    Column("sends", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("fired_at", Ms, nullable=False),
    Column("rearmed_at", Ms),
    Column("rearmed_by", String(16)),  # "person" (the API, the dashboard) or "correction"
    Index("ix_alerts_activity", "account_id", "activity_id", "kind"),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("id", String(36), primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # comma-separated WebhookEvent values
    Column("secret", String(100), nullable=False),  # whsec_<base64>: Standard Webhooks' symmetric key
    Column("description", String(400), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", Ms, nullable=False),
)

# Deliveries to make, written in the transaction of the events that cause them.
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("subscription_id", String(36), nullable=False),
    Column("msg_id", String(64), nullable=False),  # webhook-id: the same on every attempt
    Column("event_type", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Ms, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Ms, nullable=False),
    Column("locked_until", Ms),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", Ms),
    # The delivery worker serves every account: it looks for due rows across them.
    Index("ix_webhook_outbox_due", "state", "next_attempt_at"),
    Index("ix_webhook_outbox_subscription", "account_id", "subscription_id", "id"),
)

# Every attempt at a delivery: the delivery log.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("outbox_id", BigInteger, primary_key=True, autoincrement=False),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("at", Ms, nullable=False),
    Column("status", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
)

# Bounce sources (SMTP listener, mailboxes, log files) of this instance, by the name the config
# gives them: what `mailtally sources` shows, and where each resumes after a restart. Not per
# account: one listener or log file serves every account.
sources = Table(
    "sources",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("last_success_at", Ms),
    Column("last_error_at", Ms),
    Column("last_error", Text),
    Column("handled", BigInteger, nullable=False, server_default=text("0")),
    Column("backlog", BigInteger, nullable=False, server_default=text("0")),
    Column("checkpoint", Text),  # JSON: IMAP UIDVALIDITY and last UID, a log file's identity and offset, ...
    Column("updated_at", Ms, nullable=False),
)

# Postfix queue ids whose message carried one of our tokens (in its Message-ID or VERP sender),
# so that a bounce logged after a restart still finds its send.
log_queue_refs = Table(
    "log_queue_refs",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("queue_id", String(32), primary_key=True),
    Column("ref", String(128), nullable=False),
    Column("seen_at", Ms, nullable=False),
)

# Provider webhook endpoints (``POST /hooks/{provider}/{id}``): one per account and provider
# setup, with the secret that provider signs or authenticates with. ``id`` (144 random bits) is
# unguessable and looked up on its own, because the provider's request names nothing else; its
# index is not unique, so that every unique key keeps leading with the account (Citus).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("secret", Text, nullable=False, default=""),
    Column("options", JSON, nullable=False, default=dict),
    Column("created_at", Ms, nullable=False),
    Index("ix_webhook_endpoints_id", "id"),
)

# Signature tokens already seen (Mailgun's): a signed request shown twice is a replay.
webhook_tokens = Table(
    "webhook_tokens",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("endpoint_id", String(64), primary_key=True),
    Column("token", String(128), primary_key=True),
    Column("seen_at", Ms, nullable=False),
    Index("ix_webhook_tokens_age", "account_id", "endpoint_id", "seen_at"),
)

# People who sign in to the dashboard. An address belongs to one account (sign-in is by
# address alone); ``session_epoch`` moves on at sign-out, which ends every session of the user.
users = Table(
    "users",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("session_epoch", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", Ms, nullable=False),
    Column("last_login_at", Ms),
    Index("ix_users_email", "email", unique=True),
)

# Opens and clicks per activity and UTC hour (all of them, as opens_all and clicks_all count),
# rolled up by the writer as they arrive: the dashboard's charts read a few hundred rows
# instead of grouping the log (Postal's hourly statistics).
activity_hourly = Table(
    "activity_hourly",
    metadata,
    Column("account_id", Integer, primary_key=True),
    Column("activity_num", BigInteger, primary_key=True, autoincrement=False),
    Column("hour", Ms, primary_key=True, autoincrement=False),  # start of the hour
    Column("opens", BigInteger, nullable=False, default=0),
    Column("clicks", BigInteger, nullable=False, default=0),
    sqlite_with_rowid=False,
)

# How far into each tracking hit journal file (``store.hit_journal``, on a SQLite file) the log
# holds its hits: moved on in the transaction that writes them, so each is written once,
# whichever process applies it.
hit_journal_applied = Table(
    "hit_journal_applied",
    metadata,
    Column("file", String(100), primary_key=True),
    Column("applied", BigInteger, nullable=False),  # bytes from the file's start
)
