"""How the pages sit on a phone (390 × 844) and a desktop: the staff header, the thread's
room while typing, and how the thread reads (issue 18, items 20 and 21)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser]


def overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_staff_header_fits_a_phone_without_overlapping(open_as, demo):
    _, mike = demo
    page = open_as(mike, width=390, height=844)
    avatar = page.locator(".topbar-staff .avatar").bounding_box()
    nav = page.get_by_role("navigation", name="Staff")
    for name in ("Projects", "Unmatched", "Admin"):
        link = nav.get_by_role("link", name=re.compile(name)).bounding_box()
        assert not overlap(avatar, link), name
    sign_out = nav.get_by_role("button", name="Sign out").bounding_box()
    assert sign_out["x"] + sign_out["width"] <= 390


def test_the_chrome_steps_aside_while_typing_on_a_phone(open_as, demo):
    sarah, _ = demo
    page = open_as(sarah.user, width=390, height=844)
    timeline = page.locator("main #timeline")
    at_rest = timeline.bounding_box()["height"]
    page.get_by_placeholder("Type a reply…").focus()
    for chrome in (".topbar", "nav.tabs", ".thread-search"):
        expect(page.locator(chrome)).to_be_hidden()
    expect(page.get_by_role("heading", name="Mike's Contracting")).to_be_visible()
    typing = timeline.bounding_box()["height"]
    assert typing >= at_rest + 150 and typing >= 0.75 * 844
    # The keyboard takes ~340 px: the thread still gets most of what is left.
    page.set_viewport_size({"width": 390, "height": 500})
    assert timeline.bounding_box()["height"] >= 300
    page.set_viewport_size({"width": 390, "height": 844})
    timeline.click(position={"x": 5, "y": 5})  # done typing: everything is back
    expect(page.locator(".topbar")).to_be_visible()
    expect(page.locator("nav.tabs")).to_be_visible()


def test_the_staff_chat_gives_the_thread_the_room_while_typing_on_a_phone(open_as, demo):
    _, mike = demo
    page = open_as(mike, width=390, height=844)
    page.get_by_role("link", name=re.compile("Open chat with Sarah Mitchell")).click()
    dialog = page.locator("dialog#chat-dialog")
    expect(dialog.get_by_placeholder("Type a reply…")).to_be_focused()
    expect(dialog.locator(".staff-tools")).to_be_hidden()
    assert dialog.locator("#timeline").bounding_box()["height"] >= 0.75 * 844
    dialog.locator("#timeline").click(position={"x": 5, "y": 5})
    expect(dialog.get_by_text("Log a call")).to_be_visible()


def test_desktop_keeps_its_chrome_while_typing(open_as, demo):
    sarah, _ = demo
    page = open_as(sarah.user)
    page.get_by_placeholder("Type a reply…").focus()
    expect(page.locator(".topbar")).to_be_visible()
    expect(page.locator(".thread-search")).to_be_visible()


# -- reading the thread (item 21) ---------------------------------------------------------------


def test_consecutive_messages_from_one_sender_read_as_one_group(open_as, demo):
    sarah, mike = demo
    from messaging import actions
    from messaging.models import Thread

    thread = Thread.objects.get(customer=sarah)
    for n, body in enumerate(("First of three", "Second of three", "Third of three")):
        actions.post_staff_message(
            thread=thread, author=mike, body=body, idempotency_key=f"group:{n}", notify=False
        )
    page = open_as(sarah.user, width=390, height=844)
    entries = page.locator("#timeline-entries .entry-message")
    first = entries.filter(has_text="First of three")
    expect(first.locator(".sender")).to_be_visible()
    for body in ("Second of three", "Third of three"):
        expect(entries.filter(has_text=body).locator(".sender")).to_be_hidden()
    # Her reply, sent live, starts a group of its own; a second one joins it.
    box = page.get_by_placeholder("Type a reply…")
    for body in ("Mine, one", "Mine, two"):
        box.fill(body)
        box.press("Enter")
        expect(entries.filter(has_text=body)).to_be_visible()
    expect(entries.filter(has_text="Mine, one").locator(".sender")).to_be_visible()
    expect(entries.filter(has_text="Mine, two").locator(".sender")).to_be_hidden()


def test_a_card_at_390_shows_title_amount_and_action_on_one_card(open_as, demo):
    sarah, _ = demo
    page = open_as(sarah.user, width=390, height=844)
    card = page.get_by_role("link", name=re.compile(r"^Invoice #2041 sent"))
    expect(card).to_contain_text("$4,200")
    expect(card.locator(".card-action")).to_have_text("View invoice")
    box, title = card.bounding_box(), card.locator(".card-title").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert title["height"] < 30  # the title on one line
    card.click()
    expect(page.get_by_role("heading", name="Invoice #2041")).to_be_visible()
