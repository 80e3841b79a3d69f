"""Request work in headless Chromium against the real server: Sarah, at 390 px, fills the form
by keyboard and attaches two photos; the card with both photos appears live in Mike's open
chat, and axe finds nothing on the form showing its errors."""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from crm_events.models import WorkRequest
from tests.e2e import conftest as e2e
from tests.e2e.test_accessibility import violations_on

browser = e2e.browser
server = e2e.server
open_as = e2e.open_as
demo = e2e.demo

pytestmark = [pytest.mark.browser]
SHOTS = os.environ.get("PORCHLIGHT_SCREENSHOTS", "")


def _photo(path, color):
    Image.new("RGB", (640, 480), color).save(path, "JPEG")
    return str(path)


def _shot(page, name: str) -> None:
    if SHOTS:  # PORCHLIGHT_SCREENSHOTS=folder: pictures to look at, not assertions
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def test_sarah_requests_work_with_two_photos_and_it_reaches_mikes_open_chat_live(
    open_as, demo, server, tmp_path
):
    sarah, mike = demo
    staff = open_as(mike)
    staff.goto(f"{server.url}/staff/chat/{sarah.thread.pk}/")
    e2e.wait_until_live(staff)

    page = open_as(sarah.user, width=390, height=844)
    page.goto(f"{server.url}/requests/new/")
    _shot(page, "request-new-390")
    page.get_by_label("What needs doing?").focus()
    page.keyboard.type("Replace the back gate")
    page.keyboard.press("Tab")  # to the address (the demo has none on file for her)
    expect(page.get_by_label("Address of the work")).to_be_focused()
    page.keyboard.type("12 Cedar Lane, Mystic")
    day = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    page.locator("#id_window1_date").fill(day)
    page.locator("#id_window1_part").select_option("afternoon")
    page.get_by_label("Photos (optional, up to 5)").set_input_files(
        [
            _photo(tmp_path / "gate.jpg", (200, 60, 30)),
            _photo(tmp_path / "latch.jpg", (30, 60, 200)),
        ]
    )
    page.get_by_role("button", name="Send request").focus()
    page.keyboard.press("Enter")

    # Sarah lands on her card, with both photos.
    expect(page).to_have_url(re.compile(r"/messages/\?at=\d+"))
    card = page.locator(".entry-card", has_text="Work request: Replace the back gate")
    expect(card).to_contain_text("2 photos")
    expect(card.locator(".attachments img")).to_have_count(2)
    _shot(page, "request-card-390")

    # Mike's open chat got it live, without a reload.
    live_card = staff.locator(".entry-card", has_text="Work request: Replace the back gate")
    expect(live_card.locator(".attachments img")).to_have_count(2)
    expect(live_card).to_contain_text("Sarah Mitchell")
    _shot(staff, "request-card-staff-desktop")
    assert WorkRequest.objects.count() == 1


def test_the_form_with_its_errors_is_axe_clean_at_390_and_on_a_desktop(open_as, demo, server):
    sarah, _ = demo
    found = []
    page = open_as(sarah.user, width=390, height=844)  # a sign-in link works once
    for width, height in ((390, 844), (1280, 860)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{server.url}/requests/new/")
        page.get_by_role("button", name="Send request").click()
        expect(page.get_by_text("Say what needs doing.")).to_be_visible()
        expect(page.get_by_text("Choose a day that suits you.")).to_be_visible()
        # Nothing wider than the screen at 390 px.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        _shot(page, f"request-errors-{width}")
        found += violations_on(page)
    assert found == [], "\n".join(found)
