"""What a new user meets in the first minutes, in Chromium: errors beside the reply box (also
under DEBUG, as `make run` serves), a length counter instead of a silent cut, scrolling back
through history without losing one's place, focus back on the chat button, sign-in cards at
390 px."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from messaging import actions
from messaging.models import Thread
from tests.e2e.conftest import wait_until_quiet
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser]


@pytest.mark.server_env(DEBUG="1")
def test_an_empty_send_under_debug_shows_the_error_beside_the_thread(open_as, demo):
    sarah, _ = demo
    page = open_as(sarah.user)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#reply-error")).to_have_text("Write a message before sending.")
    # The page is still the page: no debug screen in its place.
    expect(page.get_by_text("Sounds good! What time works for you?")).to_be_visible()
    expect(page.get_by_placeholder("Type a reply…")).to_be_visible()


def test_text_over_the_limit_is_counted_and_refused_inline_never_cut(open_as, demo):
    sarah, _ = demo
    page = open_as(sarah.user, width=390, height=844)
    box = page.get_by_placeholder("Type a reply…")
    box.fill("x" * 4800)
    expect(page.locator("#reply-count")).to_have_text("200 characters left")
    box.fill("x" * 5100)
    expect(page.locator("#reply-count")).to_have_text("100 characters over the limit")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#reply-error")).to_contain_text("at most 5,000 characters")
    assert len(box.input_value()) == 5100  # nothing was cut
    box.fill("Short again")
    expect(page.locator("#reply-count")).to_have_text("")


def _long_thread(staff, entries: int = 160):
    customer = CustomerFactory(name="Rita Long", user__username="rita", email="rita@example.com")
    thread = actions.ensure_thread(customer=customer)
    start = timezone.now() - timezone.timedelta(days=30)
    for i in range(entries):
        actions.post_staff_message(
            thread=thread,
            author=staff,
            body=f"Message number {i + 1}",
            at=start + timezone.timedelta(hours=4 * i),
            notify=False,
        )
    return customer, thread


def _scroll_up_and_keep_place(page, timeline_selector: str) -> None:
    timeline = page.locator(timeline_selector)
    count = page.locator(f"{timeline_selector} [data-seq]").count()
    assert count == 50
    # Read back to the oldest loaded entry, which brings the "load earlier" marker into view.
    oldest = page.locator(f"{timeline_selector} [data-seq]").first
    seq = oldest.get_attribute("data-seq")
    timeline.evaluate("t => { t.scrollTop = 0; }")
    expect(page.locator(f"{timeline_selector} [data-seq]")).to_have_count(100)
    wait_until_quiet(page)  # anything else that would load has loaded
    # One page came, not all of history; the entry that was on top is still in view, where
    # the reader left it.
    assert page.locator(f"{timeline_selector} [data-seq]").count() == 100
    entry = page.locator(f"{timeline_selector} [data-seq='{seq}']")
    box, view = entry.bounding_box(), timeline.bounding_box()
    assert view["y"] <= box["y"] and box["y"] + box["height"] <= view["y"] + view["height"]
    # ...with the page just loaded above it, out of view until the reader scrolls to it.
    assert timeline.evaluate("t => t.scrollTop") > 200


def test_loading_earlier_messages_keeps_the_readers_place_for_the_customer(open_as, demo):
    _, mike = demo
    customer, _ = _long_thread(mike)
    page = open_as(customer.user, width=390, height=844)
    _scroll_up_and_keep_place(page, "main #timeline")


def test_loading_earlier_messages_keeps_the_readers_place_in_the_staff_chat(open_as, demo, server):
    _, mike = demo
    _, thread = _long_thread(mike)
    page = open_as(mike)
    page.goto(f"{server.url}/staff/chat/{thread.pk}/")
    expect(page.locator("dialog[open]")).to_be_visible()
    _scroll_up_and_keep_place(page, "dialog #timeline")


def test_closing_the_chat_gives_focus_back_to_its_button(open_as, demo, server):
    sarah, mike = demo
    sarahs_chat = re.compile("^Open chat with Sarah Mitchell")
    page = open_as(mike)
    chat = page.get_by_role("link", name=sarahs_chat)
    chat.focus()
    page.keyboard.press("Enter")
    expect(page.locator("dialog[open]")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("dialog#chat-dialog")).to_be_hidden()
    # The dialog's close event, which gives focus back, is a task queued after the close
    # itself: wait for it rather than read the focus at once.
    expect(page.locator(":focus")).to_have_accessible_name(sarahs_chat)
    # Opened straight from its URL, closing lands on the same button.
    thread = Thread.objects.get(customer=sarah)
    page.goto(f"{server.url}/staff/chat/{thread.pk}/")
    expect(page.locator("dialog[open]")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(":focus")).to_have_accessible_name(sarahs_chat)


def test_sign_in_cards_keep_a_margin_and_carry_the_business_at_390_px(browser, server, demo):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    for path in ("/login/", "/staff/login/", "/login/magic/?sesame=nope"):
        page.goto(server.url + path)
        card = page.locator(".auth-card").bounding_box()
        assert card["x"] >= 12 and card["x"] + card["width"] <= 390 - 12
        expect(page.locator(".auth-brand")).to_contain_text("Mike's Contracting")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()
