"""/v1/suppressions: the suppression list, its CSV import and export, the check, and the policy.

Every endpoint needs the ``contact_data`` scope. Errors in ``/v1``'s shape.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field
from sqlalchemy import Row
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from ..store import cursor, suppressions
from ..store.db import now_ms, writing
from ..suppression import csvfile
from ..suppression.policy import PolicyError
from ..timefmt import iso_ms
from ..vocab import SuppressionReason
from . import limits
from .body import body_schema, json_body
from .deps import capped_body, engine, inline, json_object
from .errors import ApiError, json_response
from .native import Conn, Contacts, Input
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["suppressions"])
MAX_CHECK = 100_000
# A check of MAX_CHECK addresses is a few MB of JSON, an imported list as big: the events' limit.
limits.body_limit("POST", "/v1/suppressions/check", "max_body_bytes", "too_large", "checks")
limits.body_limit("POST", "/v1/suppressions/import", "max_body_bytes", "too_large", "imports")


def entry_body(r: Any) -> dict[str, Any]:
    return {"email": r.email, "reason": r.reason, "suppressed_at": iso_ms(r.suppressed_at),
            "created_at": iso_ms(r.created_at) if getattr(r, "created_at", None) else None,
            "expires_at": iso_ms(r.expires_at) if r.expires_at is not None else None,
            "caused_by_event": r.idem is not None if hasattr(r, "idem") else False, "note": r.note}


def _email(value: str) -> str:
    email = value.strip().lower().replace("\x00", " ")
    if not csvfile.valid_email(email):
        raise ApiError(400, "bad_email", f"{value!r} is not an email address")
    return email


@router.get("/suppressions")
@inline
def list_suppressions(
    who: Contacts, conn: Conn, request: Request,
    reason: Annotated[SuppressionReason | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=320, description="part of the address")] = None,
    cursor_: Annotated[str | None, Query(alias="cursor", max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Live entries in address order; ``next`` holds the cursor of the following page."""
    key: bytes = request.app.state.secret
    after = None
    if cursor_:
        try:
            after = str(cursor.decode(key, cursor_, 1)[0])
        except cursor.BadCursor as e:
            raise ApiError(400, "bad_cursor", str(e)) from None
    if q and "\x00" in q:
        raise ApiError(400, "bad_request", "q must not contain NUL characters")
    rows = suppressions.page(conn, who.account_id, reason=reason.value if reason else None, search=q, after=after,
                             limit=limit)
    body: dict[str, Any] = {"suppressions": [entry_body(r) for r in rows]}
    if len(rows) == limit:
        body["next"] = cursor.encode(key, [rows[-1].email])
    return json_response(body)


class CheckIn(Input):
    emails: list[Annotated[str, Field(max_length=320)]] = Field(max_length=MAX_CHECK)


@router.post("/suppressions/check", openapi_extra=body_schema(CheckIn.model_json_schema()))
async def check(who: Contacts, body: Annotated[CheckIn, json_body(CheckIn)], request: Request) -> Response:
    """Which of these addresses are suppressed, and why (up to 100,000 in one call)."""
    bad = next((i for i, e in enumerate(body.emails) if "\x00" in e), None)
    if bad is not None:
        raise ApiError(400, "bad_request", f"emails[{bad}] contains a NUL character")
    def work() -> list[tuple[str, str, int, int | None]]:
        with engine(request).connect() as conn:
            return suppressions.check(conn, who.account_id, body.emails)

    found = await run_in_threadpool(work)
    return json_response({
        "checked": len({e.lower() for e in body.emails}),
        "suppressed": [{"email": e, "reason": r, "suppressed_at": iso_ms(s),
                        "expires_at": iso_ms(x) if x is not None else None} for e, r, s, x in found],
    })


@router.get("/suppressions/export", responses={200: {"content": {"text/csv": {}}}})
def export(who: Contacts, request: Request) -> Response:
    """The whole live list as CSV (the columns import reads)."""
    def lines() -> Any:
        with engine(request).connect() as conn:
            yield from csvfile.write(suppressions.every(conn, who.account_id))

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'})


@router.post("/suppressions/import",
             openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}},
                                            "required": True}})
async def import_csv(who: Contacts, request: Request) -> Response:
    """Add (or overwrite) entries from CSV; a bad line refuses the whole file, naming the line."""
    raw = await capped_body(request)
    try:
        rows = csvfile.parse_bytes(raw)
    except csvfile.CsvError as e:
        raise ApiError(400, "bad_csv", str(e), {"line": e.line}) from None

    def work() -> int:
        with writing(engine(request)) as conn:
            return suppressions.import_rows(conn, who.account_id, rows)

    changed = await run_in_threadpool(work)
    return json_response({"rows": len(rows), "imported": changed})


@router.get("/suppressions/policy")
@inline
def get_policy(who: Contacts, conn: Conn) -> Response:
    """The account's suppression policy (the instance's default, with the account's changes)."""
    return json_response(suppressions.policy_for(conn, who.account_id).to_dict())


@router.put("/suppressions/policy",
            openapi_extra=body_schema({"type": "object", "description": "policy fields to change"}))
async def put_policy(who: Contacts, request: Request) -> Response:
    """Change some policy fields (null: back to the instance default); the others keep their values."""
    data = await json_object(request)
    with writing(engine(request)) as conn:
        try:
            policy = suppressions.change_policy(conn, who.account_id, data)
        except PolicyError as e:
            raise ApiError(400, "bad_policy", str(e), {"field": e.field}) from None
    return json_response(policy.to_dict())


def _found(row: Row[Any] | None, email: str) -> Row[Any]:
    if row is None:
        raise ApiError(404, "not_found", f"{email} is not suppressed")
    return row


@router.get("/suppressions/{email}")
@inline
def get_one(who: Contacts, conn: Conn, email: str) -> Response:
    return json_response(entry_body(_found(suppressions.get(conn, who.account_id, _email(email)), email)))


class EntryIn(Input):
    reason: SuppressionReason = SuppressionReason.MANUAL
    expires_at: int | None = Field(None, ge=0, le=2**53, description="UTC milliseconds; none: until removed")
    note: str | None = Field(None, max_length=2000)


@router.put("/suppressions/{email}", openapi_extra=body_schema(EntryIn.model_json_schema(), required=False))
def put_one(who: Contacts, request: Request, email: str,
            body: Annotated[EntryIn | None, json_body(EntryIn, required=False)]) -> Response:
    """Suppress an address (manually, by default), replacing any entry it had."""
    address = _email(email)
    body = body or EntryIn(expires_at=None, note=None)
    entry = suppressions.Entry(address, body.reason, now_ms(), body.expires_at, note=body.note)
    with writing(engine(request)) as conn:
        row = suppressions.put_by_person(conn, who.account_id, entry)
    return json_response(entry_body(row))


@router.delete("/suppressions/{email}", status_code=204)
def delete_one(who: Contacts, request: Request, email: str) -> Response:
    """Take an address off the list: it gets mail again."""
    address = _email(email)
    with writing(engine(request)) as conn:
        _found(suppressions.remove_by_person(conn, who.account_id, address, "api"), email)
    return Response(status_code=204)
