"""Issue 20 in Chromium: Luis (the demo's phone-only customer) signs in with a code texted to
his phone (the real twilio client in the server sends it to the fake Twilio), at 390 px, then
reads and replies; Sarah opens an emailed notification link once; axe finds nothing on the
new pages at either width."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command
from playwright.sync_api import expect

from messaging import actions
from messaging.models import Entry
from portal import entry_links
from portal.models import Customer
from tests.e2e.conftest import browser, start_server  # noqa: F401 - the module's browser
from tests.e2e.test_accessibility import WIDTHS, violations_on

pytestmark = [pytest.mark.browser]

_axe = Axe()
LUIS = "+15555550188"


@pytest.fixture
def texting_server(transactional_db, fake_twilio):
    """The server, sending SMS to the fake Twilio. Tasks run inline in the server (no broker):
    this test is about the page and the text, not the queue."""
    srv = start_server(REDIS_URL="", **fake_twilio.settings())
    yield srv
    srv.stop()


def _code(fake_twilio, to: str = LUIS) -> str:
    body = [m for m in fake_twilio.messages if m.to == to][-1].body
    return re.search(r"#(\d{6})$", body)[1]


def test_luis_signs_in_with_his_phone_at_390px_and_reads_and_replies(
    browser,  # noqa: F811
    texting_server,
    fake_twilio,
):
    call_command("demo")
    luis = Customer.objects.get(phone=LUIS)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{texting_server.url}/login/")
    page.get_by_label("Email or mobile number").fill("(555) 555-0188")
    page.get_by_role("button", name="Send me a code").click()
    expect(page).to_have_url(f"{texting_server.url}/login/code/")
    expect(page.get_by_role("status")).to_contain_text("(555) 555-0188")
    code_box = page.get_by_label("6-digit code")
    assert code_box.get_attribute("autocomplete") == "one-time-code"

    [sms] = fake_twilio.messages
    assert sms.to == LUIS and sms.body.endswith(f"@127.0.0.1 #{_code(fake_twilio)}")
    code_box.fill(_code(fake_twilio))
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/messages/$"))
    expect(page.get_by_text("come look at the roof leak")).to_be_visible()
    page.get_by_placeholder("Type a reply…").fill("Thanks Mike, see you then.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#timeline-entries").get_by_text("see you then")).to_be_visible()
    reply = Entry.objects.filter(thread__customer=luis).order_by("-seq").first()
    assert reply.body == "Thanks Mike, see you then." and reply.channel == "portal"
    page.screenshot(path="/tmp/porchlight-luis-390.png", full_page=True)
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_nothing_on_the_sign_in_and_account_pages(
    browser,  # noqa: F811
    texting_server,
    fake_twilio,
    width,
):
    call_command("demo")
    sarah = Customer.objects.get(email="sarah@example.com")
    mike = sarah.thread.entries.filter(author__isnull=False).first().author
    entry = actions.post_staff_message(thread=sarah.thread, author=mike, body="See you soon")
    link = entry_links.link_path(
        customer_id=sarah.pk, entry_id=entry.pk, seq=entry.seq, via="email"
    )
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h})
    context.set_default_timeout(10_000)
    page = context.new_page()
    base = texting_server.url
    found = []

    def shot(name: str) -> None:
        page.screenshot(path=f"/tmp/porchlight-{name}-{width}.png", full_page=True)

    # The notification link's page, with its one button; then the thread it opens.
    page.goto(base + link)
    found += violations_on(page)
    shot("notification-link")
    page.get_by_role("button", name="Open the message").click()
    expect(page.get_by_text("See you soon")).to_be_visible()
    # Limited to the thread: the account page asks for a code, address filled in.
    page.goto(f"{base}/account/")
    expect(page.get_by_label("Email or mobile number")).to_have_value("(555) 555-0123")
    found += violations_on(page)
    shot("login-verify")
    page.get_by_role("button", name="Send me a code").click()
    page.get_by_label("6-digit code").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("doesn't work")
    found += violations_on(page)
    shot("login-code-wrong")
    page.get_by_label("6-digit code").fill(_code(fake_twilio, "+15555550123"))
    page.get_by_label("Keep me signed in on this device").check()
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/account/")
    found += violations_on(page)
    shot("account")

    page.get_by_label("New mobile number").fill("555 555 0199")
    page.get_by_role("button", name="Text me a code").click()
    expect(page).to_have_url(f"{base}/account/confirm/")
    found += violations_on(page)
    shot("account-confirm")
    page.get_by_label("6-digit code").fill(_code(fake_twilio, "+15555550199"))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("(555) 555-0199")
    found += violations_on(page)

    # Signed out: the sign-in page, with its error state.
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page).to_have_url(f"{base}/login/")
    page.get_by_label("Email or mobile number").fill("12")
    page.get_by_role("button", name="Send me a code").click()
    expect(page.get_by_role("alert")).to_contain_text("not a phone number")
    found += violations_on(page)
    shot("login-error")
    context.close()
    assert found == [], "\n".join(found)
