"""/v1/alerts: alerts fired on activities' rates, re-arming them, and the rules (``campaign_data``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import Row
from starlette.responses import Response

from ..alerts.rules import RuleError, rules_from
from ..store import alerts
from ..store.db import writing
from ..timefmt import iso_ms
from .body import body_schema
from .deps import engine, inline, json_object
from .errors import ApiError, json_response
from .native import MAX_ID, Campaigns, Conn, _uuid
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["alerts"])


def alert_body(r: Row[Any]) -> dict[str, Any]:
    return {"id": r.id, "activity_id": r.activity_id, "kind": r.kind, "rate": r.rate, "threshold": r.threshold,
            "sends": r.sends, "count": r.count, "fired_at": iso_ms(r.fired_at),
            "rearmed_at": iso_ms(r.rearmed_at) if r.rearmed_at is not None else None,
            # "person" (POST .../rearm, the dashboard) or "correction" (its condition no longer holds)
            "rearmed_by": r.rearmed_by}


@router.get("/alerts")
@inline
def list_alerts(who: Campaigns, conn: Conn, activity_id: Annotated[str | None, Query(max_length=36)] = None,
                live: Annotated[bool, Query(description="only those not re-armed")] = False,
                before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    """Alerts fired, newest first."""
    aid = _uuid(activity_id, "activity id") if activity_id else None
    rows = alerts.page(conn, who.account_id, activity_id=aid, live_only=live, before=before, limit=limit)
    body: dict[str, Any] = {"alerts": [alert_body(r) for r in rows]}
    if len(rows) == limit:
        body["next"] = f"/v1/alerts?before={rows[-1].id}&limit={limit}" + (f"&activity_id={aid}" if aid else "") \
            + ("&live=true" if live else "")
    return json_response(body)


@router.get("/alerts/rules")
@inline
def get_rules(who: Campaigns, conn: Conn) -> Response:
    """The account's rules: the documented defaults, with its changes."""
    return json_response({k.value: r.to_dict() for k, r in alerts.rules_for(conn, who.account_id).items()})


@router.put("/alerts/rules", openapi_extra=body_schema({"type": "object", "description": "rules to change"}))
async def put_rules(who: Campaigns, request: Request) -> Response:
    """Change some rules (``{"complaint_rate": {"threshold": 0.05}}``); the others stay."""
    data = await json_object(request)
    with writing(engine(request)) as conn:
        try:
            rules = rules_from(data, alerts.rules_for(conn, who.account_id))
        except RuleError as e:
            raise ApiError(400, "bad_rule", str(e), {"field": e.field}) from None
        alerts.save_rules(conn, who.account_id, rules)
    return json_response({k.value: r.to_dict() for k, r in rules.items()})


@router.post("/alerts/{alert_id}/rearm")
def rearm(who: Campaigns, request: Request, alert_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """Let this alert's rule fire again for its activity."""
    with writing(engine(request)) as conn:
        row = alerts.rearm(conn, who.account_id, alert_id)
    if row is None:
        raise ApiError(404, "not_found", f"no alert {alert_id}")
    return json_response(alert_body(row))
