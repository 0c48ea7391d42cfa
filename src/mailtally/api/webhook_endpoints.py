"""/v1/webhook-endpoints: the URLs to paste into each provider, with the secret each one checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import Response

from ..ingest.webhooks import PROVIDERS
from ..store import webhooks as store
from ..store.db import writing
from ..timefmt import iso_ms
from ..vocab import WebhookProvider
from .body import body_schema, json_body
from .deps import inline
from .errors import ApiError, json_response
from .native import Conn, Ingest, Input
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["webhook endpoints"])


class EndpointIn(Input):
    provider: WebhookProvider
    secret: str = Field("", max_length=4000, description="What the provider signs or authenticates with: "
                        "SendGrid's verification key, Mailgun's signing key, Resend's whsec_ secret, "
                        "the basic-auth password (Postmark, SparkPost, Brevo; optional for SES).")
    username: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^:\s]+$",
                                 description="Basic-auth user name (default: mailtally).")
    topic_arns: list[str] = Field(default_factory=list, max_length=50,
                                  description="SES: the SNS topic ARNs this endpoint accepts and confirms.")


def hook_url(request: Request, endpoint: store.Endpoint) -> str:
    base: str = request.app.state.settings.public_url or str(request.base_url).rstrip("/")
    return f"{base.rstrip('/')}/hooks/{endpoint.provider}/{endpoint.id}"


def endpoint_body(request: Request, e: store.Endpoint) -> dict[str, Any]:
    options = {k: v for k, v in e.options.items()}
    return {"id": e.id, "provider": e.provider, "url": hook_url(request, e), "options": options,
            "has_secret": bool(e.secret), "created_at": iso_ms(e.created_at)}


def check(provider: str, secret: str, username: str | None, topic_arns: list[str]) -> dict[str, Any]:
    """The options to store, or ValueError saying what is wrong (shared with the CLI)."""
    given: dict[str, Any] = {"topic_arns": topic_arns}
    options = PROVIDERS[provider].options(secret, given)
    if username:
        options["username"] = username
    return options


@router.post("/webhook-endpoints", status_code=201, openapi_extra=body_schema(EndpointIn.model_json_schema()))
def create(who: Ingest, body: Annotated[EndpointIn, json_body(EndpointIn)], request: Request) -> Response:
    """Create the endpoint a provider posts to; the response has the URL to paste into the provider."""
    try:
        options = check(body.provider.value, body.secret, body.username, body.topic_arns)
    except ValueError as e:
        raise ApiError(400, "bad_request", str(e)) from None
    with writing(request.app.state.engine) as conn:
        endpoint = store.create_endpoint(conn, who.account_id, body.provider.value, body.secret, options)
    return json_response(endpoint_body(request, endpoint), 201)


@router.get("/webhook-endpoints")
@inline
def list_all(who: Ingest, conn: Conn, request: Request) -> Response:
    """This account's endpoints (secrets are never shown again)."""
    return json_response({"webhook_endpoints": [endpoint_body(request, e)
                                                for e in store.list_endpoints(conn, who.account_id)]})


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
def remove(who: Ingest, endpoint_id: str, request: Request) -> Response:
    with writing(request.app.state.engine) as conn:
        if not store.delete_endpoint(conn, who.account_id, endpoint_id):
            raise ApiError(404, "not_found", f"no webhook endpoint {endpoint_id}")
    return Response(status_code=204)
