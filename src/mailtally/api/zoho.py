"""Zoho Campaigns' bounce event report, ``GET /emailapi/v2/reports/event/bounce``.

As ``reference/seeds/002_*`` documents it: ``from``/``to`` in UTC milliseconds (default: the
last 7 days), ``email``, ``bounce_type``, 1-based ``start_index``/``end_index``; success code
200301; errors 400301-400305 in ``{"errors": [{"code", "message"}]}``. Vacation auto-replies
are not bounces to Zoho, so they never appear. Auth: ``Authorization: Zoho-oauthtoken <token>``
with a mailtally API token holding ``campaign_data``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection, Row
from starlette.responses import Response

from ..ingest.batch import EMAIL
from ..store.accounts import Principal
from ..store.db import now_ms
from ..store.reports import account_bounces
from ..vocab import (
    CODE_DESCRIPTION,
    BounceCode,
    Scope,
    ZohoBounceType,
    codes_for_zoho,
    is_hard,
    zoho_bounce_type,
)
from . import auth, errors
from .deps import inline, read_conn
from .errors import ApiError, json_response
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/emailapi/v2", tags=["Zoho Campaigns"])

DAY_MS = 86_400_000
DEFAULT_RANGE_MS = 7 * DAY_MS
MAX_RANGE_MS = 90 * DAY_MS  # our choice: docs/zoho-campaigns.md
DEFAULT_PAGE = 100
MAX_PAGE = 500  # our choice: end_index - start_index + 1 at most

SUCCESS = {"code": 200301, "message": "Successfully obtained the reports for the given criteria"}
DATE_RANGE_INCORRECT = (400301, "Date range incorrect/not provided")
INVALID_INDEX = (400302, "Invalid index parameter(s)")
RANGE_TOO_LONG = (400303, "Date range exceeds the allowed limit")
INVALID_EMAIL = (400304, "Invalid contact email")
INVALID_BOUNCE_TYPE = (400305, "Invalid bounce type")

BOUNCE_TYPES: dict[str, ZohoBounceType] = {
    "hard": ZohoBounceType.HARD, "hardbounce": ZohoBounceType.HARD,
    "soft": ZohoBounceType.SOFT, "softbounce": ZohoBounceType.SOFT,
}
REPORTED_CODES = codes_for_zoho(ZohoBounceType.HARD) | codes_for_zoho(ZohoBounceType.SOFT)
_NUMBER = re.compile(r"[0-9]{1,15}")


def render_error(status: int, code: str, message: str, details: Any) -> Response:
    """Zoho's ``errors`` list; framework errors (404, 405, 500) carry their HTTP status as code."""
    number = int(code) if code.isdigit() else status
    return json_response({"errors": [{"code": number, "message": message}]}, status)


errors.register("/emailapi", render_error)


def _fail(error: tuple[int, str], status: int = 400) -> ApiError:
    return ApiError(status, str(error[0]), error[1])


def caller(request: Request) -> Principal:
    who = auth.principal(request, auth.bearer_token(request, "zoho-oauthtoken"))
    if who is None:
        raise ApiError(401, "401", "Invalid OAuth token: send Authorization: Zoho-oauthtoken <token>",
                       headers={"WWW-Authenticate": "Zoho-oauthtoken"})
    if not who.can(Scope.CAMPAIGN_DATA):
        raise ApiError(403, "403", "This token lacks the campaign_data scope")
    return who


Caller = Annotated[Principal, Depends(inline(caller))]
Conn = Annotated[Connection, Depends(read_conn)]


def _number(value: str | None, error: tuple[int, str]) -> int | None:
    if value is None:
        return None
    if not _NUMBER.fullmatch(value.strip()):
        raise _fail(error)
    return int(value)


def date_range(from_: str | None, to: str | None, now: int) -> tuple[int, int]:
    """``[from, to]`` in ms, both inclusive; a missing end is filled from the last 7 days."""
    start = _number(from_, DATE_RANGE_INCORRECT)
    end = _number(to, DATE_RANGE_INCORRECT)
    if end is None:
        end = now
    if start is None:
        start = end - DEFAULT_RANGE_MS
    if start < 0 or start > end:
        raise _fail(DATE_RANGE_INCORRECT)
    if end - start > MAX_RANGE_MS:
        raise _fail(RANGE_TOO_LONG)
    return start, end


def index_range(start_index: str | None, end_index: str | None) -> tuple[int, int]:
    """1-based and inclusive; without ``end_index`` a page of 100 (1-100 by default)."""
    first = _number(start_index, INVALID_INDEX)
    first = 1 if first is None else first
    last = _number(end_index, INVALID_INDEX)
    last = first + DEFAULT_PAGE - 1 if last is None else last
    if first < 1 or last < first or last - first + 1 > MAX_PAGE:
        raise _fail(INVALID_INDEX)
    return first, last


def bounce_reason(r: Row[Any], code: BounceCode) -> str:
    """``Permanent failure :`` for hard bounces, ``Temporary failure :`` otherwise, then the diagnostic."""
    prefix = "Permanent failure :" if is_hard(code) else "Temporary failure :"
    return prefix + (r.diagnostic or r.reason or CODE_DESCRIPTION[code])


def row_body(r: Row[Any], zuid: int) -> dict[str, Any]:
    code = BounceCode(r.bounce_code or BounceCode.OTHER)
    kind = zoho_bounce_type(code)
    assert kind is not None  # vacation is filtered out by the query
    return {
        "bounce_type": kind.value,
        "action_time": r.occurred_at,
        # The send; a bounce without a recorded send proves one no later than itself.
        "injected_time": r.sent_at if r.sent_at is not None else r.occurred_at,
        "rcpt_additional_data": r.custom_fields or {},
        "transmission_id": r.campaign_num_id,
        "contact_id": r.contact_num_id,
        "bounce_reason": bounce_reason(r, code),
        "transmission_name": r.campaign_name,
        "zuid": zuid,
        "contact_email": r.email,
    }


@router.get("/reports/event/bounce", summary="Bounce event report")
@inline
def bounce_report(
    who: Caller,
    conn: Conn,
    from_: Annotated[str | None, Query(alias="from", description="Start, UTC ms (default: 7 days before to)")] = None,
    to: Annotated[str | None, Query(description="End, UTC ms, inclusive (default: now)")] = None,
    email: Annotated[str | None, Query(description="Only this contact's bounces")] = None,
    bounce_type: Annotated[str | None, Query(description="hard or soft")] = None,
    start_index: Annotated[str | None, Query(description="1-based, default 1")] = None,
    end_index: Annotated[str | None, Query(description="Inclusive, default start_index + 99")] = None,
) -> Response:
    since, until = date_range(from_, to, now_ms())
    first, last = index_range(start_index, end_index)
    if email is not None and (len(email) > 320 or not EMAIL.match(email.strip())):
        raise _fail(INVALID_EMAIL)
    codes = REPORTED_CODES
    if bounce_type is not None:
        kind = BOUNCE_TYPES.get(bounce_type.strip().lower())
        if kind is None:
            raise _fail(INVALID_BOUNCE_TYPE)
        codes = codes_for_zoho(kind)
    rows = account_bounces(conn, who.account_id, since=since, until=until + 1, codes=sorted(codes),
                           email=email.strip() if email is not None else None,
                           offset=first - 1, limit=last - first + 1)
    return json_response({"data": [row_body(r, who.account_id) for r in rows], "response": SUCCESS})
