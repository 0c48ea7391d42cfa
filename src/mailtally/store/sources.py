"""State of each bounce source: last success, last error, backlog, and where it resumes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from .db import now_ms, writing
from .matching import chunks
from .schema import log_queue_refs, sources


@dataclass(frozen=True, slots=True)
class SourceState:
    name: str
    kind: str
    last_success_at: int | None
    last_error_at: int | None
    last_error: str | None
    handled: int
    backlog: int
    checkpoint: dict[str, Any] | None


def _upsert(conn: Connection, name: str, kind: str, values: dict[str, Any], handled: int = 0) -> None:
    values = {**values, "kind": kind, "updated_at": now_ms()}
    done = conn.execute(
        update(sources).where(sources.c.name == name)
        .values(handled=sources.c.handled + handled, **values)
    ).rowcount
    if not done:
        try:
            with conn.begin_nested():
                conn.execute(insert(sources).values(name=name, handled=handled, **values))
        except IntegrityError:  # another process made the row meanwhile
            conn.execute(update(sources).where(sources.c.name == name)
                         .values(handled=sources.c.handled + handled, **values))


def record_success(conn: Connection, name: str, kind: str, handled: int = 0, backlog: int | None = None,
                   checkpoint: dict[str, Any] | None = None) -> None:
    """Inside the transaction that committed the work, so the checkpoint and the events agree."""
    values: dict[str, Any] = {"last_success_at": now_ms()}
    if backlog is not None:
        values["backlog"] = backlog
    if checkpoint is not None:
        values["checkpoint"] = json.dumps(checkpoint, separators=(",", ":"))
    _upsert(conn, name, kind, values, handled)


def register(engine: Engine, name: str, kind: str) -> None:
    """A source that started shows in `mailtally sources` before it has handled anything."""
    with writing(engine) as conn:
        _upsert(conn, name, kind, {})


def save_checkpoint(conn: Connection, name: str, kind: str, checkpoint: dict[str, Any]) -> None:
    _upsert(conn, name, kind, {"checkpoint": json.dumps(checkpoint, separators=(",", ":"))})


def record_error(engine: Engine, name: str, kind: str, error: str, backlog: int | None = None) -> None:
    """In a transaction of its own; never raises (the store may be what failed)."""
    values: dict[str, Any] = {"last_error_at": now_ms(), "last_error": error[:2000]}
    if backlog is not None:
        values["backlog"] = backlog
    try:
        with writing(engine) as conn:
            _upsert(conn, name, kind, values)
    except Exception:
        pass


def checkpoint(conn: Connection, name: str) -> dict[str, Any] | None:
    raw = conn.execute(select(sources.c.checkpoint).where(sources.c.name == name)).scalar()
    return json.loads(raw) if raw else None


def list_sources(conn: Connection) -> list[SourceState]:
    return [
        SourceState(r.name, r.kind, r.last_success_at, r.last_error_at, r.last_error, int(r.handled),
                    int(r.backlog), json.loads(r.checkpoint) if r.checkpoint else None)
        for r in conn.execute(select(sources).order_by(sources.c.name))
    ]


def remember_queue_ref(conn: Connection, source: str, queue_id: str, ref: str, at: int) -> None:
    conn.execute(delete(log_queue_refs).where(log_queue_refs.c.source == source,
                                              log_queue_refs.c.queue_id == queue_id))
    conn.execute(insert(log_queue_refs).values(source=source, queue_id=queue_id, ref=ref[:128], seen_at=at))


def queue_ref(conn: Connection, source: str, queue_id: str) -> str | None:
    found = conn.execute(select(log_queue_refs.c.ref).where(log_queue_refs.c.source == source,
                                                            log_queue_refs.c.queue_id == queue_id)).scalar()
    return str(found) if found else None


def remember_queue_refs(conn: Connection, source: str, refs: dict[str, tuple[str, int]]) -> None:
    """`remember_queue_ref` for a batch: queue id -> (the text carrying our token, when it was seen)."""
    for part in chunks(refs):
        conn.execute(delete(log_queue_refs).where(log_queue_refs.c.source == source,
                                                  log_queue_refs.c.queue_id.in_(part)))
        conn.execute(insert(log_queue_refs), [{"source": source, "queue_id": q, "ref": refs[q][0][:128],
                                               "seen_at": refs[q][1]} for q in part])


def queue_refs(conn: Connection, source: str, queue_ids: Iterable[str]) -> dict[str, str]:
    """`queue_ref` for a batch: the queue ids among these that carried our token, and its text."""
    out: dict[str, str] = {}
    for part in chunks(set(queue_ids)):
        out.update((r.queue_id, r.ref) for r in conn.execute(
            select(log_queue_refs.c.queue_id, log_queue_refs.c.ref)
            .where(log_queue_refs.c.source == source, log_queue_refs.c.queue_id.in_(part))))
    return out


def forget_queue_refs(conn: Connection, source: str, before: int) -> None:
    conn.execute(delete(log_queue_refs).where(log_queue_refs.c.source == source, log_queue_refs.c.seen_at < before))
