"""Owning a conversation in Chromium on the demo data: mike assigns Sarah to kim from her row,
kim's open list follows live, and Sarah's next text (the real Twilio webhook, signed) is
emailed to kim (the fake Postmark) rather than texted to the business; axe finds nothing on
the list with its assignee controls nor on the chat modal with its own, at 390 px and on a
desktop."""

from __future__ import annotations

import re
import urllib.request
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect
from sesame.utils import get_token

from messaging.models import Thread
from tests.e2e.conftest import start_server
from tests.e2e.test_accessibility import WIDTHS, violations_on

pytestmark = [pytest.mark.browser]

# Set before the page's own scripts run: whether the list's inbox socket has opened (a row
# broadcast before it opens is not replayed, unlike a thread's).
INBOX_OPEN = """document.addEventListener("htmx:wsOpen", (event) => {
  if (event.detail.elt.hasAttribute("data-inbox")) window.inboxOpen = true;
});"""


@pytest.fixture
def providers_server(demo, fake_twilio, fake_postmark):
    """The server with Twilio and Postmark pointed at the fakes and tasks run in its own
    process (no REDIS_URL: eager tasks, the in-process channel layer)."""
    env = {
        "REDIS_URL": "",
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "ANYMAIL_POSTMARK_SERVER_TOKEN": fake_postmark.server_token,
        "ANYMAIL_POSTMARK_API_URL": f"{fake_postmark.url}/",
        **fake_twilio.settings(),
    }
    server = start_server(**env)
    yield server
    server.stop()


def sign_in(browser, server, user, *, width=1280, height=860):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    context.add_init_script(INBOX_OPEN)
    page = context.new_page()
    page.goto(f"{server.url}/login/magic/?sesame={get_token(user)}")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")
    return page


def test_mike_assigns_sarah_to_kim_and_kim_is_emailed_her_next_text(
    browser, demo, providers_server, fake_twilio, fake_postmark
):
    server = providers_server
    sarah, mike = demo
    kim = get_user_model().objects.get(username="kim")
    kims = sign_in(browser, server, kim)
    kims.goto(f"{server.url}/staff/projects/")
    kims.wait_for_function("() => window.inboxOpen === true")
    mikes = sign_in(browser, server, mike)
    mikes.goto(f"{server.url}/staff/projects/")

    assignee = mikes.get_by_role("combobox", name="Assignee for Sarah Mitchell")
    expect(assignee).to_have_value(str(mike.pk))  # the demo's
    assignee.select_option(label="Kim")
    mikes.get_by_role("button", name="Assign Sarah Mitchell").click()
    # The control answers in place ("Assigned to Kim."), and the live row then replaces it.
    expect(assignee).to_have_value(str(kim.pk))
    # Focus stays on the button through both swaps (keyboard users keep their place).
    expect(mikes.get_by_role("button", name="Assign Sarah Mitchell")).to_be_focused()
    # Kim's list follows without a reload.
    expect(kims.get_by_role("combobox", name="Assignee for Sarah Mitchell")).to_have_value(
        str(kim.pk)
    )

    form, signature = fake_twilio.inbound(
        f"{server.url}/webhooks/twilio/sms/", sender=sarah.phone, body="Is Thursday still on?"
    )
    request = urllib.request.Request(  # noqa: S310 - our own test server on 127.0.0.1
        f"{server.url}/webhooks/twilio/sms/",
        data=urlencode(form).encode(),
        headers={"X-Twilio-Signature": signature},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    # Tasks run in the server's request (eager): the email went before it answered.
    (email,) = fake_postmark.emails
    assert email.to == kim.email
    assert "Is Thursday still on?" in email.text
    thread = Thread.objects.get(customer=sarah)
    assert f"/staff/chat/{thread.pk}/?at=" in email.text
    assert fake_twilio.messages == []  # the business's phone was not texted
    # And Kim's list shows it, live.
    expect(kims.locator(f"tr.project-row[data-customer='{sarah.pk}'] .preview").first).to_have_text(
        "Is Thursday still on?"
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_nothing_on_the_assignee_controls_of_the_list_and_the_chat(
    open_as, demo, server, width
):
    sarah, mike = demo
    w, h = WIDTHS[width]
    page = open_as(mike, width=w, height=h)
    page.goto(f"{server.url}/staff/projects/")
    found = violations_on(page)
    page.get_by_role("link", name=re.compile("Open chat with Sarah Mitchell")).click()
    dialog = page.locator("dialog#chat-dialog")
    expect(dialog.get_by_placeholder("Type a reply…")).to_be_focused()
    found += violations_on(page)
    if width == "desktop":
        # (On a phone the chat opens typing, and the header's controls step aside until the
        # reply box is left: tests/e2e/test_layout.py.) The control, and its answer in place.
        control = page.locator(f"#assignee-chat-{sarah.pk}")
        select = control.get_by_role("combobox", name="Assignee for Sarah Mitchell")
        select.select_option(label="Unassigned")
        control.get_by_role("button", name="Assign Sarah Mitchell").click()
        expect(select).to_have_value("")
        found += violations_on(page)
    assert found == [], "\n".join(found)
