"""Insights in Chromium on the demo data: mike opens it from the staff navigation, sees the
response-time chart and, by keyboard, its table; the period links keep the period in the
URL; axe finds nothing on a desktop or at 390 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_accessibility import WIDTHS, violations_on

pytestmark = [pytest.mark.browser]


def test_mike_reads_the_demos_response_times_in_a_chart_and_its_table(open_as, demo, server):
    _, mike = demo
    page = open_as(mike, width=WIDTHS["desktop"][0], height=WIDTHS["desktop"][1])
    page.get_by_role("navigation", name="Staff").get_by_role("link", name="Insights").click()
    page.wait_for_url("**/staff/insights/")

    chart = page.get_by_role("img", name="First response times, last 30 days")
    expect(chart).to_be_visible()
    # The demo's answered questions are drawn: Daniel's and Luis's, and Sarah's CONFIRM.
    expect(chart.locator("rect")).to_have_count(6)
    # The table behind the chart opens from the keyboard.
    summary = page.get_by_text("Response times as a table")
    summary.focus()
    page.keyboard.press("Enter")
    table = page.get_by_role("table", name="Answered customer messages by first response time")
    expect(table).to_be_visible()
    counts = table.locator("tbody td").all_inner_texts()
    assert sum(int(n) for n in counts) == 5
    assert page.get_by_role("table", name="Response times for customer messages").is_visible()
    found = violations_on(page)
    page.screenshot(path="/tmp/porchlight-insights-desktop.png", full_page=True)

    page.get_by_role("link", name="Last 7 days").click()
    page.wait_for_url("**/staff/insights/?days=7")
    expect(page.get_by_role("img", name="Messages per day, last 7 days")).to_be_visible()
    page.set_viewport_size({"width": WIDTHS["phone"][0], "height": WIDTHS["phone"][1]})
    # At 390 px the page itself does not scroll sideways (the charts scroll in their frames).
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS["phone"][0]
    found += violations_on(page)
    page.screenshot(path="/tmp/porchlight-insights-390.png", full_page=True)
    assert found == [], "\n".join(found)
