"""The app works under its Content-Security-Policy, and nothing it does is refused.

Each page is watched two ways: the `securitypolicyviolation` event (registered before any of
the page's own scripts run) and Chromium's console, where every refusal is also printed. The
main flows of both sides run, live updates, the chat modal, htmx swaps, the Print button and
the Django admin included; any violation fails the test with what was refused and where.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm_events import actions as crm_actions
from messaging.models import Entry
from portal.models import Customer

pytestmark = [pytest.mark.browser]

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP-VIOLATION ${e.effectiveDirective} blocked ${e.blockedURI || "inline"} `
    + `at ${e.sourceFile}:${e.lineNumber}`);
});
window.print = () => { document.documentElement.dataset.printed = "yes"; };
"""


class Violations(list):
    """Every refusal any watched page reported, as text."""

    def watch(self, page):
        page.context.add_init_script(REPORT_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.append(f"page error: {error}"))
        return page

    def _console(self, message) -> None:
        text = message.text
        if "CSP-VIOLATION" in text or "Content Security Policy" in text:
            self.append(f"{message.page.url if message.page else '?'}: {text}")


@pytest.fixture
def violations():
    return Violations()


def test_sarahs_flows_run_under_the_policy(open_as, demo, server, violations):
    sarah, _ = demo
    start = timezone.now() + dt.timedelta(days=2)
    crm_actions.schedule_appointment(
        customer=sarah,
        project=sarah.projects.first(),
        title="Stain the deck",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
    )
    page = violations.watch(open_as(sarah.user, width=390, height=844))
    base = server.url

    page.goto(f"{base}/messages/")
    box = page.get_by_placeholder("Type a reply…")
    box.fill("Under the policy")
    box.press("Enter")
    expect(page.locator(".from-customer .bubble").last).to_have_text("Under the policy")
    page.goto(f"{base}/messages/search/?q=deck")
    expect(page.get_by_role("status")).to_contain_text("for “deck”")
    page.locator(".search-results a").first.click()
    expect(page.locator(".is-focused")).to_have_count(1)

    page.goto(f"{base}/invoices/2041/")
    page.get_by_role("button", name="Print").click()
    expect(page.locator("html")).to_have_attribute("data-printed", "yes")
    page.goto(f"{base}/estimates/311/")
    page.get_by_label("Second coat of cedar stain").check()  # estimate.js, under the CSP
    expect(page.get_by_role("button", name=re.compile("Approve estimate"))).to_contain_text(
        "$10,250"
    )
    page.get_by_label("Type your full name to sign").fill("Sarah Mitchell")
    page.get_by_label("I agree").check()
    page.get_by_role("button", name=re.compile("Approve estimate")).click()
    expect(page.get_by_role("status")).to_contain_text("You approved this estimate")
    page.goto(f"{base}/schedule/")
    page.get_by_role("button", name=re.compile("Confirm Stain the deck")).click()
    expect(page.get_by_role("status")).to_have_text("Thanks — this appointment is confirmed.")
    for path in ("/project/", "/invoices/", "/settings/notifications/"):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")

    assert violations == []
    assert "CSP violation" not in server.output()

    # And the watch works: an inline script, which the policy refuses, is seen.
    with (
        page.expect_console_message(lambda message: "script-src" in message.text),
        pytest.raises(Exception),  # noqa: B017 - Playwright reports the refusal as an error
    ):
        page.add_script_tag(content="window.ran = true")
    assert page.evaluate("window.ran") is None
    assert any("script-src" in v for v in violations), violations


def test_mikes_flows_and_the_admin_run_under_the_policy(open_as, demo, server, violations):
    sarah, mike = demo
    sarah_page = violations.watch(open_as(sarah.user, width=390))
    sarah_page.reload()
    page = violations.watch(open_as(mike))
    base = server.url
    page.goto(f"{base}/staff/projects/")
    page.get_by_role("link", name=re.compile("Open chat with Sarah Mitchell")).click()
    dialog = page.locator("dialog#chat-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_placeholder("Type a reply…").fill("From the modal, under CSP")
    dialog.get_by_placeholder("Type a reply…").press("Enter")
    expect(dialog.locator(".from-business .bubble").last).to_have_text("From the modal, under CSP")
    dialog.get_by_label("Internal note (staff only)").check()
    dialog.get_by_placeholder("Type a reply…").fill("A note under CSP")
    dialog.get_by_placeholder("Type a reply…").press("Enter")
    expect(dialog.locator(".entry-note").last).to_contain_text("A note under CSP")
    dialog.get_by_text("Log a call", exact=True).click()
    dialog.get_by_label("Duration (minutes)").fill("3")
    dialog.get_by_role("button", name="Log call").click()
    expect(dialog.locator(".call-marker").last).to_contain_text("3 min")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # Sarah writes: the list updates live.
    sarah_page.get_by_placeholder("Type a reply…").fill("Live row under CSP")
    sarah_page.get_by_placeholder("Type a reply…").press("Enter")
    row = page.locator("tbody tr").filter(has_text="Sarah Mitchell")
    expect(row).to_contain_text("Live row under CSP", timeout=5000)

    daniel = Customer.objects.get(email="daniel@example.com")
    entry = Entry.objects.filter(thread__customer=sarah).first()
    for path in (
        "/admin/",
        "/admin/portal/customer/",
        f"/admin/portal/customer/{daniel.pk}/change/",
        "/admin/portal/project/add/",
        "/admin/portal/business/",
        f"/admin/messaging/entry/{entry.pk}/change/",
        "/staff/invoices/2041/",
    ):
        response = page.goto(base + path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
    # The admin's own scripts run: its theme toggle and its date shortcuts.
    page.goto(f"{base}/admin/portal/project/add/")
    expect(page.locator("#id_title")).to_be_visible()

    assert violations == []
    assert "CSP violation" not in server.output()
