"""WhatCounts' Report Bounces command, ``GET /rest/bounces``.

As ``reference/seeds/003_*`` documents it: ``start``/``end`` dates (yyyy-mm-dd, midnight UTC,
end exclusive), ``bounceTypes`` (HARD_BOUNCE, SOFT_BOUNCE, BLOCKED), 500 per page stepped with
``skip``; a query string that is wrong is ignored, never an error. Vacation auto-replies are
not bounces to WhatCounts. Auth: HTTP Basic, the account name as user and a mailtally API
token (with ``campaign_data``) as password.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection, Row
from starlette.responses import Response

from ..store.accounts import Principal
from ..store.reports import account_bounces
from ..timefmt import to_datetime
from ..vocab import BounceCode, Scope, WhatCountsBounceType, codes_for_whatcounts, whatcounts_bounce_type
from . import auth, errors
from .deps import inline, read_conn
from .errors import ApiError, json_response
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/rest", tags=["WhatCounts"])

PAGE = 500
MEDIA_TYPE = "application/vnd.whatcounts-v1+json"
ACCEPTABLE = frozenset({MEDIA_TYPE, "application/json", "application/*", "*/*"})
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SKIP = re.compile(r"[0-9]{1,12}")


def render_error(status: int, code: str, message: str, details: Any) -> Response:
    """``{"error", "status", "statusCode"}``; ``status`` is the HTTP reason phrase."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return json_response({"error": message, "status": phrase, "statusCode": status}, status)


errors.register("/rest", render_error)


def caller(request: Request) -> Principal:
    """The token must belong to the account named as the user, or the call is refused."""
    accept = request.headers.get("accept", "")
    if accept.strip() and not any(p.split(";")[0].strip().lower() in ACCEPTABLE for p in accept.split(",")):
        raise ApiError(406, "not_acceptable", f"Not Acceptable: send Accept: {MEDIA_TYPE}")
    creds = auth.basic_credentials(request)
    who = auth.principal(request, creds[1]) if creds else None
    if who is None or creds is None or who.account_name != creds[0]:
        raise ApiError(401, "unauthorized", "Unauthorized", headers={"WWW-Authenticate": 'Basic realm="mailtally"'})
    if not who.can(Scope.CAMPAIGN_DATA):
        raise ApiError(403, "forbidden", "Forbidden: this token lacks the campaign_data scope")
    return who


Caller = Annotated[Principal, Depends(inline(caller))]
Conn = Annotated[Connection, Depends(read_conn)]


def midnight(value: str | None) -> int | None:
    """UTC ms of midnight at a yyyy-mm-dd date; None (the filter is ignored) for anything else."""
    if value is None or not _DATE.fullmatch(value.strip()):
        return None
    try:
        d = date.fromisoformat(value.strip())
    except ValueError:
        return None
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


def bounce_codes(values: list[str]) -> list[str]:
    """The codes for the valid types named (comma-separated or repeated); all bounce types when none is."""
    kinds = set()
    for value in values:
        for part in value.split(","):
            try:
                kinds.add(WhatCountsBounceType(part.strip().upper()))
            except ValueError:
                continue
    if not kinds:
        kinds = set(WhatCountsBounceType)
    return sorted(c.value for k in kinds for c in codes_for_whatcounts(k))


def wc_date(ms: int) -> str:
    """``Nov 21, 2015 6:14:16 AM``, in UTC."""
    dt = to_datetime(ms)
    hour = dt.hour % 12 or 12
    half = "AM" if dt.hour < 12 else "PM"
    return f"{MONTHS[dt.month - 1]} {dt.day}, {dt.year} {hour}:{dt.minute:02d}:{dt.second:02d} {half}"


def subscriber(r: Row[Any], realm: int, skip: int) -> dict[str, Any]:
    code = BounceCode(r.bounce_code or BounceCode.OTHER)
    kind = whatcounts_bounce_type(code)
    assert kind is not None  # vacation is filtered out by the query
    email = r.email
    return {
        "date": wc_date(r.occurred_at),
        "bounceType": kind.value,
        "subscriberId": r.contact_num_id,
        "realmId": realm,
        "email": email,
        "firstName": r.first_name or "",
        "lastName": r.last_name or "",
        "company": r.company_name or "",
        "address1": r.street or "",
        "address2": "",
        "city": r.city or "",
        "state": r.state or "",
        "zip": r.postal_code or "",
        "country": r.country or "",
        "phone": r.phone or "",
        "fax": "",
        "createdDate": wc_date(r.contact_created_at),
        "updatedDate": wc_date(r.contact_updated_at),
        "md5Encryption": hashlib.md5(email.encode()).hexdigest().upper(),
        "sha1Encryption": hashlib.sha1(email.encode()).hexdigest().upper(),
        "skip": skip,
        "max": PAGE,
    }


@router.get("/bounces", summary="Report Bounces")
@inline
def bounces(
    request: Request,
    who: Caller,
    conn: Conn,
    start: Annotated[str | None, Query(description="yyyy-mm-dd, from midnight UTC")] = None,
    end: Annotated[str | None, Query(description="yyyy-mm-dd, up to (not including) midnight UTC")] = None,
    bounce_types: Annotated[list[str] | None, Query(
        alias="bounceTypes", description="HARD_BOUNCE, SOFT_BOUNCE, BLOCKED; comma-separated or repeated")] = None,
    skip: Annotated[str | None, Query(description="Rows to skip: 0, 500, 1000, ...")] = None,
) -> Response:
    since, until = midnight(start), midnight(end)
    # The seed's own curl example spells it bounceType; take both.
    codes = bounce_codes((bounce_types or []) + request.query_params.getlist("bounceType"))
    offset = int(skip) if skip is not None and _SKIP.fullmatch(skip.strip()) else 0
    rows = account_bounces(conn, who.account_id, since=since, until=until, codes=codes, offset=offset,
                           limit=PAGE + 1)
    headers = {}
    if len(rows) > PAGE:
        rows = rows[:PAGE]
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "skip"]
        query.append(("skip", str(offset + PAGE)))
        headers["Link"] = f'<{request.url.replace(query=urlencode(query))}>; rel="next"'
    body = {"subscribers": [subscriber(r, who.account_id, offset) for r in rows], "bounceTotal": len(rows)}
    return json_response(body, headers=headers)
