"""Accessibility: axe-core finds no WCAG 2.2 A/AA violation on any customer or staff page, at
390 px and on a desktop, the chat modal open included; and the main flows work by keyboard
alone (open the chat, send, close it; approve an estimate; confirm an appointment)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect
from sesame.utils import get_token

from crm_events import actions as crm_actions
from crm_events.models import Appointment, Estimate
from messaging.models import Entry, Thread

pytestmark = [pytest.mark.browser]

WCAG_22_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
WIDTHS = {"phone": (390, 844), "desktop": (1280, 860)}

CUSTOMER_PAGES = [
    "/project/",
    "/invoices/",
    "/invoices/2041/",
    "/estimates/311/",
    "/messages/",
    "/messages/search/?q=deck",
    "/schedule/",
    "/settings/notifications/",
]
STAFF_PAGES = [
    "/staff/projects/",
    "/staff/invoices/2041/",
    "/staff/estimates/311/",
    "/staff/unmatched/",
    "/admin/",
    "/admin/portal/customer/",
    "/admin/portal/project/add/",
]
ANONYMOUS_PAGES = ["/login/", "/staff/login/", "/offline/"]

_axe = Axe()


def violations_on(page) -> list[str]:
    # label-content-name-mismatch (a control's accessible name contains its visible text,
    # WCAG 2.5.3) is an experimental rule in axe, so outside the tags: enabled by name.
    options = {
        "runOnly": {"type": "tag", "values": WCAG_22_A_AA},
        "rules": {"label-content-name-mismatch": {"enabled": True}},
    }
    results = _axe.run(page, options=options)
    assert "label-content-name-mismatch" in {
        rule["id"]
        for kind in ("passes", "violations", "inapplicable", "incomplete")
        for rule in results.response[kind]
    }, "axe did not run label-content-name-mismatch"
    found = []
    for violation in results.response["violations"]:
        for node in violation["nodes"]:
            found.append(f"{page.url} {violation['id']}: {' '.join(node['target'])}")
    return found


def check(page, url: str) -> list[str]:
    response = page.goto(url)  # waits for "load": styles applied, deferred scripts run
    assert response.status == 200, url
    return violations_on(page)


@pytest.fixture
def awaiting_appointment(demo):
    sarah, _ = demo
    start = timezone.now() + dt.timedelta(days=2)
    return crm_actions.schedule_appointment(
        customer=sarah,
        project=sarah.projects.first(),
        title="Stain the deck",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_nothing_on_any_page_of_either_side(
    browser, open_as, demo, server, awaiting_appointment, width
):
    sarah, mike = demo
    w, h = WIDTHS[width]
    found = []

    anonymous = browser.new_context(viewport={"width": w, "height": h})
    page = anonymous.new_page()
    for path in ANONYMOUS_PAGES:
        found += check(page, server.url + path)
    page.goto(f"{server.url}/login/magic/?sesame={get_token(sarah.user)}")
    found += violations_on(page)  # the page with the one "Sign in" button
    anonymous.close()

    customer = open_as(sarah.user, width=w, height=h)
    for path in CUSTOMER_PAGES:
        found += check(customer, server.url + path)

    staff = open_as(mike, width=w, height=h)
    for path in STAFF_PAGES:
        found += check(staff, server.url + path)
    staff.goto(f"{server.url}/staff/projects/")
    staff.get_by_role("link", name=re.compile("Open chat with Sarah Mitchell")).click()
    expect(staff.locator("dialog#chat-dialog")).to_be_visible()
    expect(staff.locator("dialog#chat-dialog #timeline-entries [data-seq]").first).to_be_visible()
    found += violations_on(staff)

    assert found == [], "\n".join(found)


# -- by keyboard alone ------------------------------------------------------------------------


def focused_name(page) -> str:
    return page.evaluate(
        """() => { const e = document.activeElement;
          const label = e.labels && e.labels.length ? e.labels[0].innerText : '';
          const name = e.getAttribute('aria-label') || label || e.innerText || e.value || '';
          return name.trim(); }"""
    )


def tab_to(page, name: str | re.Pattern, limit: int = 80) -> None:
    """Press Tab until the focused control's accessible name matches (as a person tabbing
    through the page would reach it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        label = focused_name(page)
        if name.search(label) if isinstance(name, re.Pattern) else label.startswith(name):
            return
    raise AssertionError(f"never reached {name!r} by Tab")


# Counts the live frames carrying a text, to the modal and to the list, and the read marks
# the page sends (thread.js sends one from its handler, before this one counts the frame).
COUNT_FRAMES = """text => {
  window.framesSeen = { modal: 0, inbox: 0, reads: 0 };
  document.addEventListener("htmx:wsAfterMessage", (event) => {
    if (!String(event.detail.message).includes(text)) return;
    window.framesSeen[event.detail.elt.hasAttribute("data-inbox") ? "inbox" : "modal"] += 1;
  });
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (String(data).includes('"type":"read"')) window.framesSeen.reads += 1;
    return send.call(this, data);
  };
}"""


def test_mike_opens_the_chat_sends_and_closes_it_by_keyboard(open_as, demo):
    sarah, mike = demo
    page = open_as(mike)
    tab_to(page, re.compile(r"^Open chat with Sarah Mitchell"))
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#chat-dialog")
    expect(dialog).to_be_visible()
    # Focus is inside the dialog (the native modal keeps it there): on to the reply box.
    tab_to(page, re.compile(r"^Message$"))
    page.evaluate(COUNT_FRAMES, "Sent by keyboard alone")
    page.keyboard.type("Sent by keyboard alone")
    page.keyboard.press("Enter")
    expect(dialog.locator(".from-business .bubble").last).to_have_text("Sent by keyboard alone")
    # The row behind the modal is redrawn live once for the message, and once more if the
    # modal's copy of it came live before the POST's answer (the modal then sends a read
    # mark). thread.js gives focus back to the button that exists when the modal closes, so
    # let every redraw land first: a redraw after closing would take the focused button away.
    expect(page.locator("tbody tr").filter(has_text="Sarah Mitchell")).to_contain_text(
        "Sent by keyboard alone"
    )
    page.wait_for_function(
        "() => { const s = window.framesSeen; return s.modal >= 1 && s.inbox >= 1 + s.reads; }"
    )
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # Focus is back on the chat button it was opened from.
    assert focused_name(page).startswith("Open chat with Sarah Mitchell")
    assert Entry.objects.filter(
        thread=Thread.objects.get(customer=sarah), body="Sent by keyboard alone"
    ).exists()


def test_sarah_replies_approves_an_estimate_and_confirms_a_visit_by_keyboard(
    open_as, demo, server, awaiting_appointment
):
    sarah, _ = demo
    page = open_as(sarah.user, width=390, height=844)
    tab_to(page, re.compile(r"^Message$"))  # the reply box, by its label
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Enter")
    expect(page.locator(".from-customer .bubble").last).to_have_text("Typed without a mouse")

    page.goto(f"{server.url}/invoices/")
    tab_to(page, "Estimate #311")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Estimate #311")).to_be_visible()
    tab_to(page, "Approve estimate")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("You approved this estimate")
    assert Estimate.objects.get(number="311").status == Estimate.Status.APPROVED

    tab_to(page, "Schedule")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Schedule")).to_be_visible()
    tab_to(page, "Confirm Stain the deck")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Thanks — this appointment is confirmed.")
    awaiting_appointment.refresh_from_db()
    assert awaiting_appointment.status == Appointment.Status.CONFIRMED
