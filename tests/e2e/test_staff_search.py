"""The staff list's search and filters in Chromium on the demo data: typing finds as it goes
(htmx, debounced) and the URL follows; the filters are links; axe finds nothing on the list
with filters and results, at 390 px and on a desktop."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_accessibility import WIDTHS, violations_on

pytestmark = [pytest.mark.browser]


def _row_names(page) -> list[str]:
    return page.locator("tr.project-row th[scope=row]").all_inner_texts()


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_nothing_on_the_list_with_filters_and_results(open_as, demo, server, width):
    _, mike = demo
    w, h = WIDTHS[width]
    page = open_as(mike, width=w, height=h)
    found = []
    for query in ("?q=sarah&show=needs_reply", "?show=unread&status=active", "?q=zebra"):
        response = page.goto(f"{server.url}/staff/projects/{query}")
        assert response.status == 200
        found += violations_on(page)
    # And after the search box has answered in place.
    page.goto(f"{server.url}/staff/projects/")
    page.get_by_role("searchbox", name="Find a customer").fill("ortiz")
    expect(page.locator("tr.project-row")).to_have_count(1)
    found += violations_on(page)
    # The chat modal opened from a searched list.
    page.get_by_role("link", name=re.compile("Open chat with Daniel Ortiz")).click()
    expect(page.locator("dialog#chat-dialog #timeline-entries [data-seq]").first).to_be_visible()
    found += violations_on(page)
    assert found == [], "\n".join(found)


def test_typing_ortiz_leaves_daniels_row_alone_and_the_url_says_so(open_as, demo, server):
    _, mike = demo
    page = open_as(mike)
    page.goto(f"{server.url}/staff/projects/")
    box = page.get_by_role("searchbox", name="Find a customer")
    box.press_sequentially("ortiz", delay=40)
    expect(page.locator("tr.project-row")).to_have_count(1)
    assert _row_names(page) == ["Daniel Ortiz"]
    expect(page).to_have_url(re.compile(r"/staff/projects/\?q=ortiz$"))
    expect(box).to_be_focused()  # the box is outside what is swapped
    expect(page.get_by_role("link", name=re.compile("Open chat with Daniel Ortiz"))).to_be_visible()

    # A filter is a link that keeps the search; the search then keeps the filter.
    page.get_by_role("link", name=re.compile(r"^Needs reply \d+$")).click()
    expect(page).to_have_url(re.compile(r"q=ortiz&show=needs_reply"))
    page.get_by_role("searchbox", name="Find a customer").fill("sarah")
    expect(page).to_have_url(re.compile(r"q=sarah&show=needs_reply"))
