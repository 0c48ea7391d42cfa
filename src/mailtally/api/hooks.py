"""``POST /hooks/{provider}/{endpoint_id}``: provider webhooks in, Events out.

Thin: find the endpoint, let its provider's module verify and parse the request, record the
events in one transaction, and answer 2xx only once they are committed. Bad signatures get
401/403 and malformed bodies 400, with nothing written; never a 5xx for bad input, because
providers retry those.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..ingest.webhooks import PROVIDERS
from ..ingest.webhooks.base import Delivery, HookRequest, Malformed, Refused, Unavailable
from ..ingest.webhooks.recording import Recorded, record
from ..store import webhooks as store
from ..store.db import writing
from ..store.writer import BatchRejected
from . import limits
from .deps import capped_body, engine
from .errors import ApiError, json_response
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, tags=["provider webhooks"])
# Providers batch (SendGrid, SparkPost, Brevo): as large as an events batch.
limits.body_limit("POST", "/hooks/", "max_body_bytes", "too_large", "bodies")
# Parsing untrusted JSON can fail in these ways; each is the sender's fault, so a 400.
_BAD_INPUT = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError, ArithmeticError)


_gc_lock = threading.Lock()
_gc_holders = 0  # requests inside ``gc_paused``
_gc_was_on = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is parsed and recorded.

    A 1,000-event batch makes some 10,000 short-lived containers (the JSON, a provider event and
    an Event each, their tuples), freed by reference counting as soon as the request ends; yet
    they trigger dozens of collections, and each full one walks the whole process's heap: a
    fifth of the request's CPU (measured with bench/webhooks.py). The collector runs again as
    soon as the last such request is done; the threshold counts continue meanwhile.
    """
    global _gc_holders, _gc_was_on
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_on = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_on:
                gc.enable()


@router.post("/hooks/{provider}/{endpoint_id}")
async def receive(provider: str, endpoint_id: str, request: Request) -> Response:
    """A provider's event notification, for the endpoint created with ``POST /v1/webhook-endpoints``."""
    module = PROVIDERS.get(provider)
    if module is None or len(endpoint_id) > 64:
        raise ApiError(404, "not_found", "no such webhook endpoint")
    body = await capped_body(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    app_state = request.app.state
    eng = engine(request)

    def work() -> tuple[Recorded, str | None]:
        with gc_paused():  # the batch's objects are gone when _work returns: none outlive the pause
            return _work()

    def _work() -> tuple[Recorded, str | None]:
        with eng.connect() as conn:
            endpoint = store.endpoint_by_id(conn, endpoint_id)
        if endpoint is None or endpoint.provider != provider:
            raise ApiError(404, "not_found", "no such webhook endpoint")
        req = HookRequest(endpoint, body, headers, app_state.settings, time.time())
        try:
            delivery: Delivery = module.receive(req)
        except (Refused, Malformed, Unavailable):
            raise
        except _BAD_INPUT as e:
            raise Malformed(f"the body is not a {provider} notification ({type(e).__name__})") from None
        with writing(eng) as conn:
            if delivery.replay_token is not None and not store.remember_token(
                    conn, endpoint, delivery.replay_token, delivery.replay_window_ms):
                # Nothing is written; the first request with this signature was recorded.
                raise Refused(delivery.replay_status, "replayed", "this signed request was seen before")
            result = record(conn, endpoint.account_id, app_state.secret, provider, delivery.events)
            if delivery.options is not None:
                store.update_options(conn, endpoint, delivery.options)
        return result, delivery.note

    try:
        result, note = await run_in_threadpool(work)
    except Refused as e:
        raise ApiError(e.status, e.code, e.message, headers=e.headers) from None
    except Malformed as e:
        raise ApiError(400, "malformed", str(e)) from None
    except BatchRejected as e:  # the modules check what the writer checks; should they miss something, a 400
        raise ApiError(400, "malformed", str(e), [{"index": x.index, "field": x.field, "message": x.message}
                                                  for x in e.errors]) from None
    except Unavailable as e:
        raise ApiError(503, "unavailable", str(e), headers={"Retry-After": "30"}) from None
    body_out: dict[str, Any] = result.as_dict()
    if note:
        body_out["note"] = note
    return json_response(body_out)
