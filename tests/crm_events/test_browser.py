"""The CRM in headless Chromium against a real daphne: Sarah confirms her appointment with
the Schedule button by keyboard alone; mike logs a call and sends "Crew on the way" from the
chat modal. (Approving an estimate: test_approval_browser.py.)"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from crm_events import actions
from crm_events.models import Appointment, Call
from portal.models import Customer
from tests.e2e import conftest as e2e

# The shared browser harness (a daphne server, Chromium, signed-in pages), used as it is.
browser = e2e.browser
server = e2e.server
open_as = e2e.open_as

pytestmark = [pytest.mark.browser]


@pytest.fixture
def demo(transactional_db):
    call_command("demo")
    sarah = Customer.objects.get(email="sarah@example.com")
    mike = get_user_model().objects.get(username="mike")
    return sarah, mike


def _tab_to(page, name: str, limit: int = 60):
    """Press Tab until the focused control's accessible name starts with `name`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        label = page.evaluate(
            "(() => { const e = document.activeElement;"
            " return (e.getAttribute('aria-label') || e.textContent || '').trim(); })()"
        )
        if label.startswith(name):
            return
    raise AssertionError(f"never reached {name!r} by Tab")


def test_sarah_confirms_her_appointment_with_the_schedule_button_by_keyboard(open_as, demo):
    sarah, _ = demo
    start = timezone.now() + dt.timedelta(days=2)
    visit = actions.schedule_appointment(
        customer=sarah,
        project=sarah.projects.first(),
        title="Stain the deck",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
    ).record
    page = open_as(sarah.user, width=390, height=844)
    page.goto(page.url.split("/messages")[0] + "/schedule/")
    expect(page.get_by_role("heading", name="Schedule")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _tab_to(page, "Confirm Stain the deck")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Thanks — this appointment is confirmed.")
    visit.refresh_from_db()
    assert visit.status == Appointment.Status.CONFIRMED
    page.get_by_role("link", name="Messages").click()
    expect(page.get_by_text("Appointment confirmed —").last).to_be_visible()


def test_sarah_taps_the_invoice_card_and_sees_its_lines(open_as, demo):
    sarah, _ = demo
    page = open_as(sarah.user, width=390, height=844)
    page.get_by_role("link", name="Invoice #2041 sent — $4,200").click()
    expect(page.get_by_role("heading", name="Invoice #2041")).to_be_visible()
    expect(page.get_by_role("cell", name="Railing and stairs")).to_be_visible()
    expect(page.locator(".lines .total")).to_have_text("$4,200")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_mike_logs_a_call_and_sends_crew_on_the_way_from_the_modal(open_as, demo, server):
    sarah, mike = demo
    page = open_as(mike)
    page.goto(f"{server.url}/staff/projects/")
    page.get_by_role("link", name="Open chat with Sarah Mitchell").click()
    dialog = page.locator("#chat-dialog")
    expect(dialog).to_be_visible()

    dialog.get_by_text("Log a call", exact=True).click()
    dialog.get_by_label("Duration (minutes)").fill("7")
    dialog.get_by_label("Transcript or notes").fill("Asked about the railing height.")
    dialog.get_by_role("button", name="Log call").click()
    expect(dialog.locator(".call-marker").last).to_contain_text("7 min")
    assert Call.objects.filter(duration_seconds=420).count() == 1

    dialog.get_by_text("Crew on the way", exact=True).click()
    dialog.get_by_label("Arriving in (minutes)").fill("15")
    dialog.get_by_role("button", name="Send “Crew on the way”").click()
    expect(dialog.locator(".bubble").last).to_contain_text("arriving in about 15 minutes")
    expect(dialog.locator(".entry-message").last.locator(".badge-urgent")).to_be_visible()

    # A card in the modal opens the staff-framed document, not a 404.
    dialog.get_by_role("link", name="Invoice #2041 sent — $4,200").click()
    expect(page.get_by_role("heading", name="Invoice #2041")).to_be_visible()
    expect(page.get_by_text("Staff view.")).to_be_visible()
