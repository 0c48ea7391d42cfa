"""Re-classifying bounces from the dashboard, checked against the API on SQLite and PostgreSQL:
the bounce's reason and code, the activity's counters (the API's stats and the page's figures),
the suppression it caused, and the stored message's corrections."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import Engine

from .conftest import Account, make_account
from .support.dashboard import csrf_of, figures, make_user, number, sign_in
from .support.mail import dsn
from .support.scenario import campaign_with_activity, post_events


def _bounced(http: httpx.Client, account: Account, reason: str = "userunknown") -> tuple[str, str]:
    _, activity_id = campaign_with_activity(http, account.headers, "Corrections")
    sent = "2024-03-01T10:00:00Z"
    post_events(http, account.headers, [
        {"type": "send", "activity_id": activity_id, "email": "gone@example.com", "occurred_at": sent},
        {"type": "send", "activity_id": activity_id, "email": "kept@example.com", "occurred_at": sent},
        {"type": "bounce", "activity_id": activity_id, "email": "gone@example.com",
         "occurred_at": "2024-03-01T10:05:00Z", "reason": reason, "diagnostic": "550 5.1.1 no such user"}])
    return activity_id, "gone@example.com"


def _bounce_link(signed_in: httpx.Client, email: str) -> str:
    page = signed_in.get("/ui/bounces").text
    m = re.search(rf'href="(/ui/bounces/[0-9a-f-]{{36}}/-?\d+\.-?\d+)" '
                  rf'aria-label="Re-classify the bounce of {re.escape(email)} ', page)
    assert m, page
    return m.group(1)


def test_a_person_corrects_a_bounce(account: Account, http: httpx.Client, signed_in: httpx.Client) -> None:
    activity_id, email = _bounced(http, account)
    assert http.get(f"/v1/suppressions/{email}", headers=account.headers).json()["reason"] == "hard_bounce"
    before = http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()["counts"]
    assert (before["bounces_b"], before["bounces_f"]) == (1, 0)

    link = _bounce_link(signed_in, email)
    page = signed_in.get(link)
    assert page.status_code == 200 and "userunknown" in page.text and "No stored bounce message" in page.text
    r = signed_in.post(link + "/reclassify", data={"csrf": csrf_of(page.text), "reason": "mailboxfull"})
    assert r.status_code == 303 and r.headers["location"].startswith(link)
    shown = signed_in.get(r.headers["location"]).text
    assert "Re-classified from userunknown to mailboxfull (code F)" in shown
    assert "suppression this bounce caused was lifted" in shown
    assert re.search(r'<dd id="bounce-reason">mailboxfull</dd>', shown)

    # The API's figures moved with it, and the page's figures are the API's.
    after = http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()["counts"]
    assert (after["bounces_b"], after["bounces_f"], after["bounces"]) == (0, 1, 1)
    cards = figures(signed_in.get(f"/ui/activities/{activity_id}").text).values
    for name in ("bounces", "bounces_b", "bounces_f"):
        assert number(cards[name]) == after[name], name
    assert http.get(f"/v1/suppressions/{email}", headers=account.headers).status_code == 404  # lifted
    listed = signed_in.get("/ui/bounces?reason=mailboxfull").text
    assert email in listed and email not in signed_in.get("/ui/bounces?code=B").text

    # Back to a hard reason: the policy suppresses the address again.
    page = signed_in.get(link).text
    signed_in.post(link + "/reclassify", data={"csrf": csrf_of(page), "reason": "hostunknown"})
    assert http.get(f"/v1/suppressions/{email}", headers=account.headers).json()["reason"] == "hard_bounce"
    again = http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()["counts"]
    assert (again["bounces_b"], again["bounces_f"]) == (1, 0)


def test_a_stored_message_corrected_and_read_again(account: Account, http: httpx.Client,
                                                   signed_in: httpx.Client) -> None:
    _, activity_id = campaign_with_activity(http, account.headers, "Raw")
    post_events(http, account.headers, [{"type": "send", "activity_id": activity_id, "email": "raw@remote.example",
                                         "occurred_at": "2024-03-01T10:00:00Z"}])
    r = http.post("/v1/bounces", content=dsn("raw@remote.example"),
                  headers={**account.headers, "Content-Type": "message/rfc822"})
    mid = r.json()["id"]
    assert r.json()["records"][0]["reason"] == "userunknown"

    # The bounce page links to its message.
    link = _bounce_link(signed_in, "raw@remote.example")
    assert f'href="/ui/messages/{mid}"' in signed_in.get(link).text

    page = signed_in.get(f"/ui/messages/{mid}").text
    assert f"<title>Bounce message {mid} · mailtally</title>" in page and page.count('id="reclassify-h"') == 1
    r = signed_in.post(f"/ui/messages/{mid}/override", data={"csrf": csrf_of(page), "reason": "blocked",
                                                             "email": "raw@remote.example"})
    assert r.status_code == 303
    shown = signed_in.get(r.headers["location"]).text
    assert "1 bounce re-classified" in shown
    api = http.get(f"/v1/bounces/{mid}", headers=account.headers).json()
    assert [(e["reason"], e["bounce_code"]) for e in api["events"]] == [("blocked", "Z")]
    stats = http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()["counts"]
    assert (stats["bounces_z"], stats["bounces_b"]) == (1, 0)

    # Read again with today's engine: it reads userunknown, as it did, and puts that back.
    r = signed_in.post(f"/ui/messages/{mid}/reclassify", data={"csrf": csrf_of(shown)})
    assert r.status_code == 303
    assert "1 bounce re-classified" in signed_in.get(r.headers["location"]).text
    api = http.get(f"/v1/bounces/{mid}", headers=account.headers).json()
    assert [(e["reason"], e["bounce_code"]) for e in api["events"]] == [("userunknown", "B")]
    r = signed_in.post(f"/ui/messages/{mid}/reclassify", data={"csrf": csrf_of(shown)})
    assert "Read again: nothing changed" in signed_in.get(r.headers["location"]).text


@pytest.mark.parametrize("reason", ["", "feedback", "delivered", "suppressed", "nonsense"])
def test_only_bounce_reasons_are_taken(account: Account, http: httpx.Client, signed_in: httpx.Client,
                                       reason: str) -> None:
    activity_id, email = _bounced(http, account)
    link = _bounce_link(signed_in, email)
    r = signed_in.post(link + "/reclassify", data={"csrf": csrf_of(signed_in.get(link).text), "reason": reason})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()["counts"]["bounces_b"] == 1


def test_csrf_and_other_accounts(engine: Engine, account: Account, http: httpx.Client,
                                 signed_in: httpx.Client) -> None:
    activity_id, email = _bounced(http, account)
    link = _bounce_link(signed_in, email)
    for data in ({"reason": "mailboxfull"}, {"reason": "mailboxfull", "csrf": "forged"}):
        assert signed_in.post(link + "/reclassify", data=data).status_code == 403
    assert http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()["counts"]["bounces_b"] == 1

    with httpx.Client(base_url=str(signed_in.base_url), follow_redirects=False) as outsider:
        stranger = make_account(engine)
        assert sign_in(outsider, make_user(engine, stranger.name)).status_code == 303
        assert outsider.get(link).status_code == 404
        csrf = csrf_of(outsider.get("/ui/bounces").text)
        r = outsider.post(link + "/reclassify", data={"csrf": csrf, "reason": "mailboxfull"})
        assert r.status_code == 404
    assert http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()["counts"]["bounces_b"] == 1
    for bad in (link.rsplit("/", 1)[0] + "/1.x", link.rsplit("/", 1)[0] + "/1.2", "/ui/bounces/not-a-uuid/1.2"):
        assert signed_in.get(bad).status_code in (400, 404), bad


def test_reasons_are_offered_in_the_vocabularys_order(account: Account, http: httpx.Client,
                                                      signed_in: httpx.Client) -> None:
    """The vocabulary's order (vocab.Reason, as the docs' table lists it: userunknown first), not
    alphabetical (authfailure first), on the message page, a bounce's page and the filters."""
    from mailtally.store import corrections
    from mailtally.vocab import Reason

    expected = [r.value for r in corrections.BOUNCE_REASONS]
    assert expected[0] == Reason.USERUNKNOWN.value and expected == [r.value for r in Reason if r in expected]
    mid = http.post("/v1/bounces", content=dsn("order@remote.example"),
                    headers={**account.headers, "Content-Type": "message/rfc822"}).json()["id"]
    page = signed_in.get(f"/ui/messages/{mid}").text
    offered = re.findall(r'<option value="([a-z]+)">\1 \(code', page)
    assert offered == expected
    filters = re.findall(r'<option value="([a-z]+)"', signed_in.get("/ui/bounces").text)
    assert filters[0] == Reason.USERUNKNOWN.value and "authfailure" in filters[1:]
