"""Replying faster in Chromium on the demo data: "/" + "dep" in Sarah's chat inserts the
Deposit reply filled with her values, by keyboard alone, and it sends as an ordinary message;
the modal's search finds "cedar stain" in the call transcript and opens it in the timeline
(loading the page around it); "Needs reply" lists exactly the customers whose last message is
theirs; axe finds nothing with the completion list open or with search results, at 390 px and
on a desktop."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging import actions
from messaging.models import Entry, Thread
from tests.e2e.conftest import wait_until_quiet
from tests.e2e.test_accessibility import WIDTHS, violations_on
from tests.e2e.test_csp import Violations

pytestmark = [pytest.mark.browser]


def deposit_for(customer) -> str:
    """The Deposit reply as the server fills it for her (the values themselves are checked in
    tests/crm_events/test_saved_replies.py); here, that the box receives exactly it."""
    from crm_events.queries import saved_replies_for

    replies = saved_replies_for(customer=customer, zone=customer.business.time_zone)
    return next(reply.text for reply in replies if reply.name == "Deposit")


def without_upcoming_visits(customer) -> None:
    """The demo's visit today (an announcement's audience) is cancelled, so that the reply
    has a variable without a value, whatever the time of day the suite runs."""
    from django.utils import timezone

    from crm_events import actions as crm
    from crm_events.models import Appointment

    upcoming = Appointment.objects.filter(customer=customer, starts_at__gte=timezone.now())
    for visit in upcoming.exclude(status=Appointment.Status.CANCELLED):
        crm.transition_appointment(appointment=visit, to="cancelled", notify=False)


def _open_sarahs_chat(page, server):
    page.goto(f"{server.url}/staff/projects/")
    chat = page.get_by_role("link", name=re.compile("Open chat with Sarah Mitchell"))
    chat.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#chat-dialog")
    expect(dialog.locator("#timeline-entries [data-seq]").first).to_be_visible()
    return dialog


@pytest.mark.parametrize("width", WIDTHS)
def test_slash_dep_inserts_sarahs_deposit_reply_and_search_opens_the_transcript(
    open_as, demo, server, width
):
    sarah, mike = demo
    without_upcoming_visits(sarah)
    deposit = deposit_for(sarah)
    assert "[no visit scheduled]" in deposit
    thread = Thread.objects.get(customer=sarah)
    call_seq = Entry.objects.get(thread=thread, kind=Entry.Kind.CALL).seq
    # Enough newer messages that the call is no longer on the chat's first page.
    for i in range(60):
        actions.post_staff_message(thread=thread, author=mike, body=f"Update {i}", notify=False)
    w, h = WIDTHS[width]
    page = open_as(mike, width=w, height=h)
    refused = Violations()
    refused.watch(page)
    page.reload()  # with the watcher in place from the page's start
    dialog = _open_sarahs_chat(page, server)
    box = dialog.get_by_placeholder("Type a reply…")
    expect(box).to_be_focused()
    expect(dialog.locator(f"#entry-{call_seq}")).to_have_count(0)

    # "/dep": a listbox of the matching replies, the first one active.
    box.press_sequentially("/dep", delay=30)
    listbox = dialog.get_by_role("listbox", name="Saved replies")
    expect(listbox).to_be_visible()
    expect(box).to_have_attribute("role", "combobox")
    expect(box).to_have_attribute("aria-expanded", "true")
    option = listbox.get_by_role("option")
    expect(option).to_have_count(1)
    expect(option).to_contain_text("Deposit")
    expect(box).to_have_attribute("aria-activedescendant", option.get_attribute("id"))
    found = violations_on(page)
    page.screenshot(path=f"/tmp/porchlight-saved-replies-{width}.png")

    # Escape closes the list, not the dialog; typing "/dep" again and Enter inserts it.
    box.press("Escape")
    expect(listbox).to_be_hidden()
    expect(dialog).to_be_visible()
    box.press("Backspace")
    box.press_sequentially("p", delay=30)
    expect(listbox).to_be_visible()
    box.press("Enter")
    expect(listbox).to_be_hidden()
    expect(box).to_have_value(deposit)
    expect(dialog.locator("[data-saved-reply-note]")).to_contain_text("[no visit scheduled]")
    # Editable text: the staff member fixes the fallback, then sends as ever.
    value = deposit.replace("[no visit scheduled]", "next Tuesday")
    box.fill(value)
    box.press("Enter")
    expect(dialog.locator(".entry-message .bubble").last).to_have_text(value)
    # The send's own answer (which empties the box and focuses it) may come after the live
    # frame that showed the message.
    expect(box).to_have_value("")
    assert Entry.objects.filter(thread=thread, kind=Entry.Kind.STAFF_MESSAGE, body=value).exists()

    # The search finds the words in the transcript; the hit opens it in the timeline. (On a
    # phone the search steps aside while the reply box has focus: leave the box first.)
    dialog.locator("#timeline").focus()
    search = dialog.get_by_role("searchbox", name="Search this conversation")
    search.fill("cedar stain")
    search.press("Enter")
    hit = dialog.locator("#chat-search-results [data-search-hit]")
    expect(hit).to_have_count(1)
    expect(hit).to_contain_text("Call transcript")
    expect(hit.locator("mark").first).to_have_text("cedar")
    found += violations_on(page)
    page.screenshot(path=f"/tmp/porchlight-chat-search-{width}.png")
    hit.focus()
    page.keyboard.press("Enter")
    entry = dialog.locator(f"#entry-{call_seq}")
    expect(entry).to_be_focused()
    expect(entry).to_have_class(re.compile("is-focused"))
    expect(entry.locator("details.transcript")).to_have_attribute("open", "")
    expect(entry).to_contain_text("cedar stain needs a second coat")
    expect(entry).to_be_in_viewport()
    wait_until_quiet(page)
    page.screenshot(path=f"/tmp/porchlight-chat-hit-{width}.png")
    assert found == [], "\n".join(found)
    assert refused == []  # and nothing was refused under the strict CSP


def test_needs_reply_lists_exactly_the_customers_whose_last_message_is_theirs(
    open_as, demo, server
):
    _, mike = demo
    expected = sorted(
        Thread.objects.filter(last_message_kind=Entry.Kind.CUSTOMER_REPLY).values_list(
            "customer__name", flat=True
        )
    )
    assert expected  # the demo has some, and not everyone
    assert len(expected) < Thread.objects.count()
    page = open_as(mike)
    page.goto(f"{server.url}/staff/projects/")
    page.get_by_role("link", name=re.compile(r"^Needs reply \d+$")).click()
    expect(page).to_have_url(re.compile(r"show=needs_reply"))
    names = page.locator("tr.project-row th[scope=row]")
    expect(names).to_have_count(len(expected))
    assert sorted(set(names.all_inner_texts())) == expected
