"""R10: magic-link reuse and expiry, rate limits, an XSS corpus under CSP -> all refused,
0 executed.

The sign-in part runs in process (Django's test client); the XSS part in Debian's Chromium
against the real ASGI server and its real Content-Security-Policy (tests/e2e/conftest.py).
Every payload of tests/test_security.py is stored as names, titles and messages and typed
into the composer; each page gets a hook before its own scripts run that counts any call of
alert/confirm/prompt, any dialog, and every CSP refusal."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect
from sesame.utils import get_token

from messaging import actions
from tests.e2e import conftest as e2e
from tests.factories import CustomerFactory, ProjectFactory, UserFactory
from tests.test_security import XSS_PAYLOADS

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

browser = e2e.browser
server = e2e.server
open_as = e2e.open_as

HOOK = """
window.__xss = [];
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = (...args) => { window.__xss.push(`${name}(${args.join(",")})`); };
}
document.addEventListener("securitypolicyviolation", (e) => {
  (window.__csp = window.__csp || []).push(`${e.effectiveDirective} ${e.blockedURI || "inline"}`);
});
"""


def _sign_in_refusals(client: Client, customer, staff, settings) -> dict[str, list[int]]:
    """Each attempt that must be refused, with the status codes the server gave."""
    got: dict[str, list[int]] = {}

    token = get_token(customer.user)
    first = client.post("/login/magic/", {"sesame": token})
    assert first.status_code == 302 and client.session["_auth_user_id"] == str(customer.user.pk)
    client.logout()
    got["magic link used twice"] = [
        client.post("/login/magic/", {"sesame": token}).status_code,
        client.get(f"/login/magic/?sesame={token}").status_code,
    ]

    token = get_token(customer.user)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=django_settings.SESAME_MAX_AGE + 60)
    with time_machine.travel(later, tick=False):
        got["magic link past its max age"] = [
            client.post("/login/magic/", {"sesame": token}).status_code
        ]
    assert "_auth_user_id" not in client.session

    settings.RATE_LOGIN_LINKS_PER_ADDRESS = "3/h"
    codes = [
        client.post("/login/", {"address": customer.email, "method": "link"}).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [200, 200, 200], codes
    got["sign-in links over 3/h"] = codes[3:]

    settings.RATE_STAFF_LOGIN_FAILURES = "3/15m"
    for _ in range(4):
        client.post("/staff/login/", {"username": staff.username, "password": "wrong"})
    right = {"username": staff.username, "password": "correct horse battery"}
    got["staff password after 3 failures"] = [client.post("/staff/login/", right).status_code]
    assert "_auth_user_id" not in client.session

    settings.RATE_SENDS_PER_USER = "3/m"
    client.force_login(customer.user)
    # On a stopped clock: the limit's one-minute windows start at a second of their own, and
    # five sends that straddled that second fell in two windows, and none was refused.
    with time_machine.travel(timezone.now(), tick=False):
        codes = [
            client.post("/messages/send/", {"body": f"n{i}", "key": f"rate-{i}"}).status_code
            for i in range(5)
        ]
    assert all(code < 400 for code in codes[:3]), codes
    got["sends over 3/m"] = codes[3:]
    client.logout()
    return got


def test_reused_and_expired_links_and_rates_are_refused_and_no_xss_runs_under_csp(
    settings, customer, staff, open_as, server, figures
):
    refusals = _sign_in_refusals(Client(), customer, staff, settings)
    wrong = {
        name: codes
        for name, codes in refusals.items()
        if any(code != (400 if name.startswith("magic link") else 429) for code in codes)
    }
    assert wrong == {}, refusals
    settings.RATE_LOGIN_LINKS_PER_ADDRESS = "1000000/h"

    # The corpus, stored everywhere a person's words are shown.
    eve = CustomerFactory(
        name="Eve " + XSS_PAYLOADS[1], user=UserFactory(username="eve"), email="eve@example.com"
    )
    ProjectFactory(customer=eve, title="Deck " + XSS_PAYLOADS[2], plan_type=XSS_PAYLOADS[0])
    thread = actions.ensure_thread(customer=eve)
    for i, payload in enumerate(XSS_PAYLOADS):
        CustomerFactory(name=f"X{i} {payload}"[:120], user=UserFactory(username=f"x{i}"))
        actions.post_customer_reply(customer=eve, body=payload, notify=False)
        actions.post_staff_message(thread=thread, author=staff, body=payload, notify=False)
        actions.add_internal_note(thread=thread, author=staff, body=payload)

    dialogs: list[str] = []
    pages = []

    def watched(page):
        page.context.add_init_script(HOOK)
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        pages.append(page)
        return page

    base = server.url
    loads = 0
    eve_page = watched(open_as(eve.user))
    # Typed into the composer too: sent through htmx, shown by the answer and the socket.
    for payload in XSS_PAYLOADS[:3]:
        box = eve_page.get_by_placeholder("Type a reply…")
        box.fill(payload)
        box.press("Enter")
        expect(eve_page.locator(".from-customer .bubble").last).to_have_text(payload)
    paths = [
        "/messages/",
        "/project/",
        *(f"/messages/search/?q={quote(p[:40])}" for p in XSS_PAYLOADS),
    ]
    for path in paths:
        eve_page.goto(base + path)
        eve_page.wait_for_load_state("networkidle")
        loads += 1

    mike_page = watched(open_as(staff))
    for path in ("/staff/projects/", f"/staff/chat/{thread.pk}/", "/staff/unmatched/"):
        mike_page.goto(base + path)
        mike_page.wait_for_load_state("networkidle")
        loads += 1
    mike_page.goto(f"{base}/staff/projects/")
    mike_page.get_by_role("link", name=re.compile("Open chat with Eve")).click()
    expect(mike_page.locator("dialog#chat-dialog")).to_be_visible()
    mike_page.wait_for_load_state("networkidle")
    loads += 1

    executed = [call for page in pages for call in page.evaluate("window.__xss || []")]
    blocked = [v for page in pages for v in page.evaluate("window.__csp || []")]
    # The hook itself works: a call it should count is counted.
    eve_page.evaluate("alert('hook-check')")
    assert eve_page.evaluate("window.__xss") == ["alert(hook-check)"]

    assert executed == [] and dialogs == [], (executed, dialogs)
    assert blocked == [], blocked
    assert "CSP violation" not in server.output()
    refused = sum(len(codes) for codes in refusals.values())
    figures(
        f"{refused}/{refused} sign-in attempts refused ("
        + ", ".join(f"{name}: {'/'.join(map(str, codes))}" for name, codes in refusals.items())
        + f"); {len(XSS_PAYLOADS)} XSS payloads x {loads} page loads in Chromium under CSP -> "
        f"{len(executed) + len(dialogs)} executed, {len(blocked)} CSP refusals"
    )
