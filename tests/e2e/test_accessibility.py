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
    "/requests/new/",
]
STAFF_PAGES = [
    "/staff/projects/",
    "/staff/invoices/2041/",
    "/staff/estimates/311/",
    "/staff/unmatched/",
    "/staff/announcements/",
    "/staff/announcements/new/",
    "/admin/",
    "/admin/portal/customer/",
    "/admin/portal/project/add/",
]
ANONYMOUS_PAGES = ["/login/", "/staff/login/", "/offline/"]

_axe = Axe()

# axe checks every rule on every node whatever this says; it only stops building a selector
# and an HTML excerpt for every node that passed (or was left undecided) beyond the first of
# each rule, which these checks never read: on the admin's long pages that was most of axe's
# time and of the answer's size. Violations are reported in full, every node of each.
VIOLATIONS_IN_FULL = ["violations"]


def violations_on(page) -> list[str]:
    # label-content-name-mismatch (a control's accessible name contains its visible text,
    # WCAG 2.5.3) is an experimental rule in axe, so outside the tags: enabled by name.
    options = {
        "runOnly": {"type": "tag", "values": WCAG_22_A_AA},
        "rules": {"label-content-name-mismatch": {"enabled": True}},
        "resultTypes": VIOLATIONS_IN_FULL,
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
    ).record


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
    # The row behind the modal is redrawn live for the message, and for the read mark the
    # modal sends if its copy came live before the POST's answer: one redraw or two, since
    # a row's changes that arrive while it renders go as one (consumers.coalesced_rows).
    # A redraw after closing replaces the focused button, and thread.js focuses the new one.
    expect(page.locator("tbody tr").filter(has_text="Sarah Mitchell")).to_contain_text(
        "Sent by keyboard alone"
    )
    page.wait_for_function(
        "() => { const s = window.framesSeen; return s.modal >= 1 && s.inbox >= 1; }"
    )
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # Focus is back on the chat button it was opened from: thread.js moves it on the dialog's
    # close event, a task queued after the dialog hides, so wait for it rather than look once.
    page.wait_for_url("**/staff/projects/")
    page.wait_for_function(
        """() => { const e = document.activeElement;
          const name = (e.getAttribute('aria-label') || e.innerText || '').trim();
          return name.startsWith('Open chat with Sarah Mitchell'); }"""
    )
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
    tab_to(page, "Type your full name to sign")
    page.keyboard.type("Sarah Mitchell")
    tab_to(page, "I agree")
    page.keyboard.press("Space")
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


# -- the Django admin, where staff work (issue 18, item 18) -----------------------------------

# Beyond WCAG's tags, two best-practice rules the admin broke: a label given only by title or
# aria-describedby, and header cells with nothing in them.
ADMIN_EXTRA_RULES = ("label-title-only", "empty-table-header")


def admin_pages() -> list[str]:
    """Every registered model's changelist, add form, and the change form of its first row."""
    from django.contrib import admin
    from django.urls import reverse

    pages = []
    for model in admin.site._registry:
        meta = model._meta
        name = f"admin:{meta.app_label}_{meta.model_name}"
        pages.append(reverse(f"{name}_changelist"))
        pages.append(reverse(f"{name}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            pages.append(reverse(f"{name}_change", args=[first.pk]))
    return pages


def admin_violations_on(page) -> list[str]:
    rules = {rule: {"enabled": True} for rule in ADMIN_EXTRA_RULES}
    options = {
        "runOnly": {"type": "tag", "values": WCAG_22_A_AA},
        "rules": rules,
        "resultTypes": VIOLATIONS_IN_FULL,
    }
    results = _axe.run(page, options=options)
    return [
        f"{page.url} {violation['id']}: {' '.join(node['target'])}"
        for violation in results.response["violations"]
        for node in violation["nodes"]
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_nothing_on_the_admins_changelists_and_change_forms(open_as, demo, server, width):
    _, mike = demo
    w, h = WIDTHS[width]
    staff = open_as(mike, width=w, height=h)
    found = []
    pages = admin_pages()
    assert any("/crm_events/invoice/" in p and p.endswith("/change/") for p in pages)
    for path in pages:
        response = staff.goto(server.url + path)
        if response.status == 403 and path.endswith("/add/"):
            continue  # records only the app makes (threads, entries): no add form
        assert response.status == 200, path
        # goto waited for "load": the admin draws its widgets (calendars, clocks, filters) in
        # its load handlers, which have run by now; nothing on these pages fetches later.
        found += admin_violations_on(staff)
    assert found == [], "\n".join(found)


def test_the_admin_names_each_invoice_line_input_after_its_column(open_as, demo, server):
    _, mike = demo
    staff = open_as(mike)
    staff.goto(f"{server.url}/admin/crm_events/invoice/")
    staff.get_by_role("link", name="2041").click()
    expect(staff.get_by_role("textbox", name="Description, row 1")).to_have_value(
        "Composite decking, 320 sq ft"
    )
    expect(staff.get_by_role("spinbutton", name="Unit price, row 2")).to_have_value("850.00")
    expect(staff.get_by_role("checkbox", name="Delete?, row 3")).to_be_visible()


# -- the staff list and chat (issue 18, items 18 and 19) ---------------------------------------


def unread_for_staff(customer, count: int) -> None:
    from messaging import actions

    for n in range(count):
        actions.post_customer_reply(
            customer=customer, body=f"Question {n}", idempotency_key=f"unread:{n}", notify=False
        )


@pytest.mark.parametrize("unread", [1, 12])
def test_chat_buttons_name_carries_the_unread_count_it_shows(open_as, demo, server, unread):
    sarah, mike = demo
    from messaging.actions import mark_read
    from messaging.models import Side

    thread = Thread.objects.get(customer=sarah)
    mark_read(thread=thread, side=Side.STAFF)
    unread_for_staff(sarah, unread)
    page = open_as(mike)
    button = page.get_by_role("link", name=f"Open chat with Sarah Mitchell, {unread} unread")
    expect(button.locator(".unread-badge")).to_have_text(str(unread))
    # axe can judge it: the visible count is part of the name by construction, so the rule
    # (WCAG 2.5.3) neither fails nor is left undecided.
    results = _axe.run(
        page,
        options={"runOnly": {"type": "rule", "values": ["label-content-name-mismatch"]}},
    )
    undecided = [
        node["target"]
        for kind in ("violations", "incomplete")
        for rule in results.response[kind]
        for node in rule["nodes"]
        if "chat-button" in node["html"]
    ]
    assert undecided == []


def test_every_control_in_the_staff_chat_is_at_least_24_px_at_390(open_as, demo, server):
    _, mike = demo
    page = open_as(mike, width=390, height=844)
    page.get_by_role("link", name=re.compile("Open chat with Sarah Mitchell")).click()
    dialog = page.locator("dialog#chat-dialog")
    expect(dialog.locator("#timeline-entries [data-seq]").first).to_be_visible()
    small = page.evaluate(
        """() => Array.from(document.querySelectorAll(
              'dialog a[href], dialog button, dialog summary, dialog input, dialog select,'
              + ' dialog textarea'))
            .map(e => [e, e.getBoundingClientRect()])
            .filter(([e, r]) => r.width > 0 && r.height > 0 && (r.width < 24 || r.height < 24))
            .map(([e, r]) => `${e.outerHTML.slice(0, 80)} ${r.width}x${r.height}`)"""
    )
    assert small == []


def test_staff_chat_opens_with_focus_on_the_reply_box(open_as, demo, server):
    _, mike = demo
    page = open_as(mike, width=390, height=844)
    tab_to(page, re.compile(r"^Open chat with Sarah Mitchell"))
    page.keyboard.press("Enter")
    expect(page.locator("dialog#chat-dialog")).to_be_visible()
    expect(page.get_by_placeholder("Type a reply…")).to_be_focused()
    # Opened from its own URL (a notification's link), the same.
    page.goto(f"{server.url}/staff/chat/{Thread.objects.get(customer=demo[0]).pk}/")
    expect(page.get_by_placeholder("Type a reply…")).to_be_focused()


@pytest.mark.parametrize("how", ["escape", "close button"])
def test_closing_the_chat_restores_the_list_url_so_a_reload_stays_closed(
    open_as, demo, server, how
):
    _, mike = demo
    page = open_as(mike)
    for opened_from_its_url in (False, True):
        if opened_from_its_url:
            page.goto(f"{server.url}/staff/chat/{Thread.objects.get(customer=demo[0]).pk}/")
        else:
            page.get_by_role("link", name=re.compile("Open chat with Sarah Mitchell")).click()
            expect(page).to_have_url(re.compile(r"/staff/chat/\d+/"))
        dialog = page.locator("dialog#chat-dialog")
        expect(dialog).to_be_visible()
        if how == "escape":
            page.keyboard.press("Escape")
        else:
            page.get_by_role("link", name="Close chat").click()
        expect(dialog).to_be_hidden()
        expect(page).to_have_url(f"{server.url}/staff/projects/")
        page.reload()
        expect(page.get_by_role("heading", name="Projects")).to_be_visible()
        expect(dialog).to_be_hidden()


def test_back_after_closing_the_chat_never_lands_on_the_closed_chats_url(open_as, demo, server):
    _, mike = demo
    page = open_as(mike, width=390, height=844)
    page.get_by_role("link", name=re.compile("Open chat with Sarah Mitchell")).click()
    dialog = page.locator("dialog#chat-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(f"{server.url}/staff/projects/")
    page.go_back()
    page.wait_for_timeout(500)  # htmx restores the list from its history cache
    assert "/staff/chat/" not in page.url
    page.reload()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(dialog).to_be_hidden()


def test_logging_a_call_keeps_focus_on_the_tool_and_says_it_was_logged(open_as, demo, server):
    sarah, mike = demo
    page = open_as(mike)
    page.get_by_role("link", name=re.compile("Open chat with Sarah Mitchell")).click()
    dialog = page.locator("dialog#chat-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("summary", has_text="Log a call").click()
    dialog.get_by_label("Duration (minutes)").fill("7")
    dialog.get_by_role("button", name="Log call").focus()
    page.keyboard.press("Enter")
    expect(dialog.locator(".entry-call").last).to_contain_text("7 min")
    expect(dialog.locator("summary", has_text="Log a call")).to_be_focused()
    expect(dialog.locator("#live-announcer")).to_have_text("Call logged.")


def test_approving_an_estimate_lands_focus_on_the_result(open_as, demo, server):
    sarah, _ = demo
    page = open_as(sarah.user)
    page.goto(f"{server.url}/estimates/311/")
    page.get_by_label("Type your full name to sign").fill("Sarah Mitchell")
    page.get_by_label("I agree").check()
    page.get_by_role("button", name=re.compile("Approve estimate")).focus()
    page.keyboard.press("Enter")
    status = page.get_by_role("status")
    expect(status).to_contain_text("You approved this estimate")
    expect(status).to_be_focused()
    # Coming back later, the page opens as usual (focus is not pulled to an old result).
    page.goto(f"{server.url}/estimates/311/")
    expect(page.get_by_role("status")).not_to_be_focused()


def test_confirming_a_visit_lands_focus_on_the_confirmation(
    open_as, demo, server, awaiting_appointment
):
    sarah, _ = demo
    page = open_as(sarah.user, width=390, height=844)
    page.goto(f"{server.url}/schedule/")
    page.get_by_role("button", name=re.compile("Confirm Stain the deck")).focus()
    page.keyboard.press("Enter")
    status = page.get_by_role("status")
    expect(status).to_have_text("Thanks — this appointment is confirmed.")
    expect(status).to_be_focused()
