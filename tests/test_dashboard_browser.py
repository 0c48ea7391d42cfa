"""The dashboard in a real browser (Chromium through Playwright) on the demo data.

Screenshots of each page go to test-output/screenshots/.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from mailtally.config import Settings
from mailtally.demo import DEMO_ACCOUNT, ensure_demo, ensure_demo_user
from mailtally.store import migrate
from mailtally.store.db import open_engine

from .conftest import TEST_SECRET, LiveServer, free_port, make_account
from .support.browser import screenshot
from .support.scenario import campaign_with_activity, post_events, seed_004


class Demo:
    def __init__(self, server: LiveServer, login: str, password: str, token: str):
        self.server, self.url, self.login, self.password, self.token = server, server.url, login, password, token


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'demo.db'}"
    engine = open_engine(url)
    migrate.upgrade(engine)
    token, _ = ensure_demo(engine)
    login, password = ensure_demo_user(engine)
    engine.dispose()
    with LiveServer(Settings(database_url=url, secret=TEST_SECRET, port=free_port())) as live:
        yield Demo(live, login, password, token)


def sign_in(page: Any, demo: Demo) -> None:
    page.goto(demo.url + "/")
    assert "/ui/login" in page.url
    page.get_by_label("Email address").fill(demo.login)
    page.get_by_label("Password").fill(demo.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/campaigns")


def test_sign_in_and_sign_out(page: Any, demo: Demo) -> None:
    page.goto(demo.url + "/")
    page.get_by_label("Email address").fill(demo.login)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong email address or password."
    screenshot(page, "01-sign-in-refused")
    page.get_by_label("Password").fill(demo.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/campaigns")
    assert page.get_by_role("heading", level=1).inner_text() == "Campaigns"
    assert demo.login in page.inner_text("header")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login")
    page.goto(demo.url + "/ui/bounces")
    assert "/ui/login" in page.url
    assert page.errors == []


def test_each_page_on_the_demo_data(page: Any, demo: Demo) -> None:
    sign_in(page, demo)
    rows = page.locator("table tbody tr")
    assert rows.count() == 4  # the demo's four campaigns
    screenshot(page, "02-campaigns")

    # Search narrows the table in place (htmx), and the address bar follows.
    page.get_by_label("Search campaigns by name").fill("holi")
    page.wait_for_url("**q=holi**")
    expect(page.locator("#campaigns tbody tr")).to_have_count(1)
    assert page.locator("#campaigns tbody th").inner_text() == "Holiday Sale"
    # Sorting by a column header.
    page.get_by_label("Search campaigns by name").fill("")
    expect(page.locator("#campaigns tbody tr")).to_have_count(4)
    page.get_by_role("link", name="Sent", exact=True).click()
    page.wait_for_url("**sort=sends**")
    sends = [int(t.replace(",", "")) for t in page.locator("td[data-figure=sends]").all_inner_texts()]
    assert sends == sorted(sends, reverse=True) and sends[0] == 2500

    page.get_by_role("link", name="Holiday Sale").click()
    page.wait_for_url("**/ui/activities/**")
    page.wait_for_selector("#timeline-chart canvas")  # uPlot drew the chart
    cards = {page.locator(f"[data-figure={n}]").inner_text() for n in ("sends",)}
    assert cards == {"2,500"}
    screenshot(page, "03-activity")
    activity_url = page.url

    # One drill-down: the bounces figure lists exactly that many contacts (over pages of 50).
    bounces = int(page.locator("[data-figure=bounces]").inner_text().replace(",", ""))
    page.locator("[data-figure=bounces]").click()
    page.wait_for_url("**list=bounces**")
    assert page.get_by_role("heading", level=1).inner_text() == "Bounced"
    screenshot(page, "04-bounced-contacts")
    seen = page.locator("tbody th a").count()
    while page.get_by_role("link", name="Older").count():
        page.get_by_role("link", name="Older").click()
        page.wait_for_load_state()
        seen += page.locator("tbody th a").count()
    assert seen == bounces

    page.locator("tbody th a").first.click()
    page.wait_for_url("**/ui/contacts/**")
    assert page.locator("tr.ev-bounce").count() >= 1 and page.locator("tr.ev-send").count() >= 1
    screenshot(page, "05-contact")

    page.goto(demo.url + "/ui/bounces")
    screenshot(page, "06-bounces")
    total_first = page.locator("tbody tr").count()
    page.get_by_label("Reason").select_option("mailboxfull")
    page.wait_for_url("**reason=mailboxfull**")
    expect(page.locator("#bounces tbody tr td:nth-child(5)").first).to_have_text("mailboxfull")
    assert set(page.locator("#bounces tbody tr td:nth-child(5)").all_inner_texts()) == {"mailboxfull"}
    assert 0 < page.locator("#bounces tbody tr").count() <= total_first
    screenshot(page, "07-bounces-filtered")

    page.goto(demo.url + "/ui/bounces/unmatched")
    assert page.get_by_role("heading", level=1).inner_text() == "Unmatched bounces"
    screenshot(page, "08-unmatched")
    page.goto(demo.url + "/ui/contacts")
    screenshot(page, "09-contacts")
    page.goto(demo.url + "/ui/settings/tokens")
    screenshot(page, "10-tokens")
    page.goto(activity_url)
    assert page.errors == []


def test_csv_download_matches_the_figure(page: Any, demo: Demo, tmp_path: Path) -> None:
    sign_in(page, demo)
    page.get_by_role("link", name="Product Launch").click()
    page.wait_for_url("**/ui/activities/**")
    opens = int(page.locator("[data-figure=opens]").inner_text().replace(",", ""))
    page.locator("[data-figure=opens]").click()
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download all of them as CSV")).click()
    path = tmp_path / "opens.csv"
    download.value.save_as(path)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == opens and all("@" in r["email"] for r in rows)


def test_api_token_created_shown_once_and_revoked(page: Any, demo: Demo) -> None:
    sign_in(page, demo)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Name").fill("browser test")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("New token").input_value()
    assert token.startswith("mt_")
    screenshot(page, "11-token-created")
    assert httpx.get(demo.url + "/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page.goto(demo.url + "/ui/settings/tokens")  # coming back shows the list, never the token again
    assert token not in page.content()
    page.get_by_role("button", name=re.compile("Revoke token browser test")).click()
    assert "Token revoked" in page.inner_text("main")
    assert httpx.get(demo.url + "/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_forged_form_is_refused(page: Any, demo: Demo) -> None:
    sign_in(page, demo)
    page.goto(demo.url + "/ui/settings/tokens")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'forged')")
    page.get_by_label("Name").fill("forged")
    page.get_by_role("button", name="Create token").click()
    assert "CSRF check failed" in page.inner_text("main")
    screenshot(page, "12-csrf-refused")
    page.goto(demo.url + "/ui/settings/tokens")
    assert "forged" not in page.inner_text("main")


def test_another_accounts_urls_are_refused(page: Any, demo: Demo) -> None:
    engine = open_engine(demo.server.app.state.settings.database_url)
    stranger = make_account(engine)
    engine.dispose()
    with httpx.Client(base_url=demo.url) as http:
        _, activity_id = campaign_with_activity(http, stranger.headers, "Not yours")
        post_events(http, stranger.headers, seed_004(activity_id))
    sign_in(page, demo)
    response = page.goto(f"{demo.url}/ui/activities/{activity_id}")
    assert response.status == 404 and "There is no campaign activity" in page.inner_text("main")
    screenshot(page, "13-other-account-refused")
    assert "Not yours" not in page.content()


def test_readable_without_javascript_and_by_keyboard(chromium: Any, demo: Demo) -> None:
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, demo)
        page.get_by_label("Search campaigns by name").fill("webinar")
        page.get_by_role("button", name="Search").click()  # a plain GET form
        assert page.locator("#campaigns tbody tr").count() == 1
        page.get_by_role("link", name="Webinar Invite").click()
        page.wait_for_url("**/ui/activities/**")
        assert page.locator("#timeline-chart canvas").count() == 0  # no chart without JavaScript…
        page.get_by_text("Opens and clicks as a table").click()  # …but the same figures as a table
        assert page.locator("details table tbody tr").count() > 24
        screenshot(page, "14-activity-without-javascript")
    finally:
        context.close()

    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(demo.url + "/ui/login")
        page.keyboard.type(demo.login)  # the address field has the focus
        page.keyboard.press("Tab")
        page.keyboard.type(demo.password)
        page.keyboard.press("Enter")
        page.wait_for_url("**/ui/campaigns")
        assert DEMO_ACCOUNT in page.inner_text("header")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        page.keyboard.press("Tab")  # then into the page: the search field comes first
        assert page.evaluate("document.activeElement.id") == "q"
    finally:
        context.close()


def test_a_suppression_added_and_removed(page: Any, demo: Demo, tmp_path: Path) -> None:
    api = {"Authorization": f"Bearer {demo.token}"}
    address = "browser-test@example.org"
    sign_in(page, demo)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Suppressions").click()
    page.wait_for_url("**/ui/suppressions")
    assert page.get_by_role("heading", level=1).inner_text() == "Suppressions"
    screenshot(page, "15-suppressions")
    listed = int(page.locator("[data-figure=suppressions]").inner_text().replace(",", ""))
    with httpx.Client(base_url=demo.url, headers=api) as http:
        assert http.get(f"/v1/suppressions/{address}").status_code == 404

        form = page.get_by_role("region", name="Suppress an address")
        form.get_by_label("Email address").fill(address)
        form.get_by_label("Reason").select_option("complaint")
        form.get_by_label("Note (optional)").fill("added in the browser test")
        form.get_by_role("button", name="Suppress", exact=True).click()
        page.wait_for_url("**added=**")
        assert page.get_by_role("status").inner_text() == f"{address} is suppressed."
        expect(page.locator(f'tr[data-suppressed="{address}"] td').first).to_have_text("complaint")
        entry = http.get(f"/v1/suppressions/{address}").json()
        assert entry["reason"] == "complaint" and entry["note"] == "added in the browser test"
        screenshot(page, "16-suppression-added")

        page.get_by_role("button", name=f"Remove {address} from the list").click()
        page.wait_for_url("**removed=**")
        assert "was taken off the list" in page.get_by_role("status").inner_text()
        assert page.locator(f'tr[data-suppressed="{address}"]').count() == 0
        assert http.get(f"/v1/suppressions/{address}").status_code == 404
        assert int(page.locator("[data-figure=suppressions]").inner_text().replace(",", "")) == listed

        # A CSV file imported from the page.
        upload = tmp_path / "list.csv"
        upload.write_text("email,reason,note\nimported-1@example.org,manual,from a file\nimported-2@example.org,,\n")
        page.get_by_label("CSV file", exact=True).set_input_files(str(upload))
        page.get_by_role("button", name="Import").click()
        assert "Imported list.csv: 2 rows read, 2 entries added or changed." in page.get_by_role("status").inner_text()
        assert http.get("/v1/suppressions/imported-2@example.org").json()["reason"] == "import"
        screenshot(page, "17-suppressions-imported")

    # The contact page shows a contact's suppression, and takes it off from there.
    page.goto(demo.url + "/ui/suppressions?reason=hard_bounce")
    page.locator("#suppressions tbody th a").first.click()
    page.wait_for_url("**/ui/contacts/**")
    assert page.locator("#suppression-state").inner_text().startswith("Suppressed (hard_bounce)")
    screenshot(page, "18-contact-suppressed")
    page.get_by_role("button", name="Remove from the suppression list").click()
    page.wait_for_load_state()
    assert page.locator("#suppression-state").inner_text() == "Not suppressed: gets mail"
    page.get_by_role("button", name="Suppress this address").click()
    page.wait_for_load_state()
    assert page.locator("#suppression-state").inner_text().startswith("Suppressed (manual)")
    assert page.errors == []


def test_a_re_classification(page: Any, demo: Demo) -> None:
    api = {"Authorization": f"Bearer {demo.token}"}
    sign_in(page, demo)
    page.goto(demo.url + "/ui/bounces?code=B")
    page.locator("#bounces tbody tr").first.get_by_role("link", name=re.compile("^Re-classify the bounce of")).click()
    page.wait_for_url(re.compile(r".*/ui/bounces/[0-9a-f-]{36}/-?\d+\.-?\d+$"))
    old_reason = page.locator("#bounce-reason").inner_text()
    email = page.get_by_role("heading", level=1).inner_text().removeprefix("Bounce of ")
    href = page.locator("main a[href*='/ui/activities/']").first.get_attribute("href")
    assert href
    activity_id = href.rsplit("/", 1)[1]
    with httpx.Client(base_url=demo.url, headers=api) as http:
        before = http.get(f"/v1/activities/{activity_id}/stats").json()["counts"]
        screenshot(page, "19-bounce")
        page.get_by_label("Correct reason").select_option("mailboxfull")
        page.get_by_role("button", name="Re-classify").click()
        page.wait_for_url("**was=**")
        notice = page.get_by_role("status").inner_text()
        assert notice.startswith(f"Re-classified from {old_reason} to mailboxfull (code F)")
        assert page.locator("#bounce-reason").inner_text() == "mailboxfull"
        screenshot(page, "20-bounce-re-classified")
        after = http.get(f"/v1/activities/{activity_id}/stats").json()["counts"]
        assert (after["bounces_b"], after["bounces_f"]) == (before["bounces_b"] - 1, before["bounces_f"] + 1)
        assert after["bounces"] == before["bounces"]
        suppressed = http.get(f"/v1/suppressions/{email}")
        assert suppressed.status_code == 404 or suppressed.json()["reason"] != "hard_bounce"
    # The activity page shows the API's figure.
    page.goto(f"{demo.url}/ui/activities/{activity_id}")
    assert int(page.locator("[data-figure=bounces_f]").inner_text().replace(",", "")) == after["bounces_f"]
    assert page.errors == []


# Accessibility checks run on each page (tests/support/a11y.js): names, contrast, landmarks.
A11Y = (Path(__file__).parent / "support" / "a11y.js").read_text()


def test_every_page_screenshot_and_accessibility(page: Any, demo: Demo) -> None:
    from .support.mail import dsn

    with httpx.Client(base_url=demo.url, headers={"Authorization": f"Bearer {demo.token}"}) as http:
        stored = http.post("/v1/bounces", content=dsn("nobody-here@remote.example"),
                           headers={"Content-Type": "message/rfc822"}).json()["id"]
    sign_in(page, demo)
    page.goto(demo.url + "/ui/bounces")
    bounce = page.get_by_role("link", name=re.compile("^Re-classify the bounce of")).first.get_attribute("href")
    page.goto(demo.url + "/ui/suppressions?reason=hard_bounce")
    contact = page.locator("#suppressions tbody th a").first.get_attribute("href")
    page.goto(demo.url + "/ui/campaigns")
    page.get_by_role("link", name="Holiday Sale").click()
    page.wait_for_url("**/ui/activities/**")
    activity = page.url.removeprefix(demo.url)
    pages = [("campaigns", "/ui/campaigns"), ("activity", activity),
             ("activity-opens", activity + "/contacts?list=opens"), ("contacts", "/ui/contacts"), ("contact", contact),
             ("bounces", "/ui/bounces"), ("bounce", bounce),
             ("unmatched", "/ui/bounces/unmatched"), ("message", f"/ui/messages/{stored}"),
             ("suppressions", "/ui/suppressions"), ("tokens", "/ui/settings/tokens"), ("alerts", "/ui/settings/alerts"),
             ("webhooks", "/ui/settings/webhooks"), ("endpoints", "/ui/settings/endpoints")]
    for n, (name, path) in enumerate(pages, 21):
        response = page.goto(demo.url + str(path))
        assert response.status == 200, path
        screenshot(page, f"{n}-{name}")
        assert page.evaluate(A11Y) == [], path
    page.goto(demo.url + "/ui/login")
    assert page.evaluate(A11Y) == []
    assert page.errors == []


def test_settings_in_the_browser(page: Any, demo: Demo) -> None:
    sign_in(page, demo)
    api = {"Authorization": f"Bearer {demo.token}"}
    page.goto(demo.url + "/ui/settings/alerts")
    page.get_by_label("complaint_rate threshold (%)").fill("0.2")
    page.get_by_role("button", name="Save the rules").click()
    page.wait_for_url("**saved=1")
    with httpx.Client(base_url=demo.url, headers=api) as http:
        assert http.get("/v1/alerts/rules").json()["complaint_rate"]["threshold"] == 0.2

        page.get_by_role("navigation", name="Settings").get_by_role("link", name="Outgoing webhooks").click()
        page.get_by_label("URL").fill("https://hooks.example.invalid/mailtally")
        page.get_by_label("suppression.added").check()
        page.get_by_role("button", name="Subscribe").click()
        assert page.get_by_label("Signing secret").input_value().startswith("whsec_")
        screenshot(page, "35-webhook-created")
        [sub] = http.get("/v1/webhooks").json()["webhooks"]
        assert "suppression.added" in sub["events"]
        page.goto(demo.url + "/ui/settings/webhooks")
        page.get_by_role("button", name="Remove the webhook to https://hooks.example.invalid/mailtally").click()
        page.wait_for_url("**removed=1")
        assert http.get("/v1/webhooks").json()["webhooks"] == []

        page.get_by_role("navigation", name="Settings").get_by_role("link", name="Provider webhook endpoints").click()
        page.get_by_label("Provider").select_option("mailgun")
        page.get_by_label("Secret", exact=True).fill("key-0123456789abcdef")
        page.get_by_role("button", name="Create endpoint").click()
        url = page.get_by_label("Endpoint URL").input_value()
        assert "/hooks/mailgun/wh" in url
        screenshot(page, "36-endpoint-created")
        [endpoint] = http.get("/v1/webhook-endpoints").json()["webhook_endpoints"]
        assert endpoint["url"] == url
        page.goto(demo.url + "/ui/settings/endpoints")
        page.get_by_role("button", name=f"Remove the mailgun endpoint {endpoint['id']}").click()
        page.wait_for_url("**removed=1")
        assert http.get("/v1/webhook-endpoints").json()["webhook_endpoints"] == []

    # By keyboard alone: the suppression form is filled and sent with Tab and Enter.
    page.goto(demo.url + "/ui/suppressions")
    page.focus("#add-email")
    page.keyboard.type("keyboard@example.org")
    order = []
    while page.evaluate("document.activeElement.id") != "add-note" and len(order) < 6:
        page.keyboard.press("Tab")  # the reason keeps "manual", the date (three parts) stays empty
        order.append(page.evaluate("document.activeElement.id"))
    assert order[0] == "add-reason" and order[-1] == "add-note" and set(order) <= {"add-reason", "add-expires",
                                                                                  "add-note"}
    page.keyboard.type("from the keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url("**added=**")
    expect(page.locator('tr[data-suppressed="keyboard@example.org"] td').first).to_have_text("manual")
    assert page.errors == []
