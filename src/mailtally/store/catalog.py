"""Contacts, campaigns, their activities and links: what events refer to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, Table, insert, select, update

from ..ids import new_uuid, new_uuids
from .accounts import allocate
from .db import now_ms
from .schema import activities, campaigns, contacts, links

CONTACT_FIELDS = (
    "email", "first_name", "last_name", "company_name", "job_title", "phone",
    "street", "city", "state", "postal_code", "country", "custom_fields",
)
ACTIVITY_ROLES = ("primary_email", "resend")
CHUNK = 500


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _get(conn: Connection, table: Table, account: int, id_: str | int) -> Row[Any] | None:
    """By UUID, or by the numeric id when given an int."""
    col = table.c.num_id if isinstance(id_, int) else table.c.id
    return conn.execute(select(table).where(table.c.account_id == account, col == id_)).first()


# -- contacts ---------------------------------------------------------------------------


def create_contact(conn: Connection, account: int, fields: Mapping[str, Any]) -> Row[Any]:
    t = now_ms()
    values = {k: fields.get(k) for k in CONTACT_FIELDS if k in fields}
    values["email"] = str(values["email"]).strip().lower()
    values.setdefault("custom_fields", {})
    num = allocate(conn, account, "seq_contact")
    cid = new_uuid()
    conn.execute(
        insert(contacts).values(
            account_id=account, id=cid, num_id=num, created_at=t, updated_at=t, **values
        )
    )
    row = get_contact(conn, account, cid)
    assert row is not None
    return row


def get_contact(conn: Connection, account: int, id_: str | int) -> Row[Any] | None:
    return _get(conn, contacts, account, id_)


def contact_by_email(conn: Connection, account: int, email: str) -> Row[Any] | None:
    return conn.execute(
        select(contacts).where(contacts.c.account_id == account, contacts.c.email == email.lower())
    ).first()


def list_contacts(conn: Connection, account: int, after_num: int, limit: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(contacts)
            .where(contacts.c.account_id == account, contacts.c.num_id > after_num)
            .order_by(contacts.c.num_id)
            .limit(limit)
        )
    )


def update_contact(conn: Connection, account: int, id_: str, fields: Mapping[str, Any]) -> None:
    values = {k: fields[k] for k in CONTACT_FIELDS if k in fields}
    if "email" in values:
        values["email"] = str(values["email"]).strip().lower()
    conn.execute(
        update(contacts)
        .where(contacts.c.account_id == account, contacts.c.id == id_)
        .values(updated_at=now_ms(), **values)
    )


def delete_contact(conn: Connection, account: int, id_: str) -> None:
    """Contacts are never removed: their history stays, marked deleted."""
    t = now_ms()
    conn.execute(
        update(contacts)
        .where(contacts.c.account_id == account, contacts.c.id == id_)
        .values(deleted_at=t, updated_at=t)
    )


def contacts_for_emails(conn: Connection, account: int, emails: Iterable[str]) -> dict[str, str]:
    """Contact ids for these addresses, creating contacts that do not exist yet."""
    return {email: ref[0] for email, ref in contact_refs_for_emails(conn, account, emails).items()}


def contact_refs_for_emails(conn: Connection, account: int, emails: Iterable[str]) -> dict[str, tuple[str, int]]:
    """``(id, num_id)`` of the contact of each address, creating those that do not exist yet."""
    wanted = sorted({e.lower() for e in emails})
    found: dict[str, tuple[str, int]] = {}
    for chunk in _chunks(wanted):
        for r in conn.execute(
            select(contacts.c.email, contacts.c.id, contacts.c.num_id).where(
                contacts.c.account_id == account, contacts.c.email.in_(chunk)
            )
        ):
            found[r.email] = (r.id, int(r.num_id))
    missing = [e for e in wanted if e not in found]
    if missing:
        found.update(create_contacts(conn, account, missing))
    return found


_NEW_CONTACT = ("account_id", "id", "num_id", "email", "created_at", "updated_at")


def create_contacts(conn: Connection, account: int, emails: Sequence[str]) -> dict[str, tuple[str, int]]:
    """Create a contact for each (lower-case) address, known not to have one (the caller holds the
    account's lock, ``allocate``'s); ``(id, num_id)`` by address.

    Rows straight to the driver (``COPY`` on PostgreSQL): SQLAlchemy's per-row processing was
    most of the cost of a batch of events naming thousands of new contacts by address.
    """
    if not emails:
        return {}
    first = allocate(conn, account, "seq_contact", len(emails))
    t = now_ms()
    ids = new_uuids(len(emails))
    rows = [(account, cid, first + i, email, "{}", t, t)
            for i, (email, cid) in enumerate(zip(emails, ids, strict=True))]
    columns = ", ".join((*_NEW_CONTACT[:4], "custom_fields", *_NEW_CONTACT[4:]))
    cur = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            with cur.copy(f"COPY contacts ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cur.executemany(f"INSERT INTO contacts ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    finally:
        cur.close()
    return {email: (cid, first + i) for i, (email, cid) in enumerate(zip(emails, ids, strict=True))}


def existing_ids(conn: Connection, table: Table, account: int, ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(ids))
    out: set[str] = set()
    for chunk in _chunks(wanted):
        out.update(
            conn.execute(
                select(table.c.id).where(table.c.account_id == account, table.c.id.in_(chunk))
            ).scalars()
        )
    return out


# -- campaigns and activities -------------------------------------------------------------


def create_campaign(
    conn: Connection, account: int, name: str, type_: str = "Newsletter", created_at: int | None = None
) -> Row[Any]:
    t = created_at or now_ms()
    num = allocate(conn, account, "seq_campaign")
    cid = new_uuid()
    conn.execute(
        insert(campaigns).values(
            account_id=account, id=cid, num_id=num, name=name, type=type_, status="Draft",
            created_at=t, updated_at=t,
        )
    )
    row = get_campaign(conn, account, cid)
    assert row is not None
    return row


def get_campaign(conn: Connection, account: int, id_: str | int) -> Row[Any] | None:
    return _get(conn, campaigns, account, id_)


def list_campaigns(conn: Connection, account: int, after_num: int, limit: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(campaigns)
            .where(campaigns.c.account_id == account, campaigns.c.num_id > after_num)
            .order_by(campaigns.c.num_id)
            .limit(limit)
        )
    )


def create_activity(
    conn: Connection,
    account: int,
    campaign_id: str,
    role: str = "primary_email",
    subject: str = "",
    from_name: str = "",
    from_email: str = "",
) -> Row[Any]:
    t = now_ms()
    num = allocate(conn, account, "seq_activity")
    aid = new_uuid()
    conn.execute(
        insert(activities).values(
            account_id=account, id=aid, num_id=num, campaign_id=campaign_id, role=role,
            status="Draft", subject=subject, from_name=from_name, from_email=from_email,
            created_at=t, updated_at=t,
        )
    )
    row = get_activity(conn, account, aid)
    assert row is not None
    return row


def get_activity(conn: Connection, account: int, id_: str | int) -> Row[Any] | None:
    return _get(conn, activities, account, id_)


def activities_of(conn: Connection, account: int, campaign_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(activities)
            .where(activities.c.account_id == account, activities.c.campaign_id == campaign_id)
            .order_by(activities.c.num_id)
        )
    )


def put_links(conn: Connection, account: int, activity_id: str, items: Sequence[Mapping[str, Any]]) -> None:
    """Add links; a url_id given again replaces its url and tag."""
    ids = [str(i["url_id"]) for i in items]
    existing = set(
        conn.execute(
            select(links.c.url_id).where(
                links.c.account_id == account, links.c.activity_id == activity_id, links.c.url_id.in_(ids)
            )
        ).scalars()
    )
    for item in items:
        values = {"url": item["url"], "link_tag": item.get("link_tag")}
        if str(item["url_id"]) in existing:
            conn.execute(
                update(links)
                .where(links.c.account_id == account, links.c.activity_id == activity_id,
                       links.c.url_id == str(item["url_id"]))
                .values(**values)
            )
        else:
            conn.execute(
                insert(links).values(account_id=account, activity_id=activity_id,
                                     url_id=str(item["url_id"]), **values)
            )


def links_of(conn: Connection, account: int, activity_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(links)
            .where(links.c.account_id == account, links.c.activity_id == activity_id)
            .order_by(links.c.url_id)
        )
    )
