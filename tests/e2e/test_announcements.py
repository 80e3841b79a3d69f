"""Announcements in the browser: Mike composes "Rain today" for today's visits, previews it,
sends it and watches the progress reach Done, with a real Celery worker sending the batches;
axe finds nothing on the compose, preview, progress and list pages."""

from __future__ import annotations

import os

import pytest
import redis
from django.db import connection

from crm_events.announcements.models import Announcement
from messaging.models import Entry
from tests.e2e.conftest import start_server
from tests.e2e.test_accessibility import violations_on
from tests.servers import CeleryWorker, database_url

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]

# One recipient per batch, so the page shows it sending before it is done.
PACING = {"ANNOUNCEMENT_BATCH_SIZE": "1", "ANNOUNCEMENT_SMS_PER_SECOND": "2"}
# ANNOUNCEMENT_SCREENSHOTS=<dir> saves the pages at a phone's width and a desktop's (the suite
# runs the desktop one only: a browser test with a worker costs some 40 seconds).
SCREENSHOTS = os.environ.get("ANNOUNCEMENT_SCREENSHOTS", "")
WIDTHS = [390, 1280] if SCREENSHOTS else [1280]


@pytest.fixture
def server(transactional_db):
    srv = start_server(**PACING)
    yield srv
    srv.stop()


@pytest.fixture
def worker(server):
    queue = redis.Redis.from_url(os.environ["REDIS_URL"])
    queue.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    started = CeleryWorker(
        env={
            "SECRET_KEY": "worker-test-only",
            "DATABASE_URL": database_url(connection.settings_dict),
            "SITE_URL": server.url,
            **PACING,
        }
    ).start()
    yield started
    started.kill()
    queue.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    queue.close()


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=f"{SCREENSHOTS}/{name}.png", full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_mike_previews_and_sends_rain_today_and_watches_it_finish(
    open_as, demo, server, worker, width
):
    sarah, mike = demo
    page = open_as(mike, width=width)
    page.goto(f"{server.url}/staff/projects/")
    page.get_by_role("link", name="Announcements").click()
    page.get_by_role("link", name="New announcement").click()
    assert violations_on(page) == []
    shot(page, f"announcement-new-{width}")

    page.get_by_label("Message").fill("Rain today — we'll call to rebook, {first_name}.")
    page.get_by_label("Customers with a visit on").check()
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("2 recipients").wait_for()
    assert page.locator("#preview-text").inner_text() == (
        "Rain today — we'll call to rebook, Luis."
    )
    assert "1 segment (UCS-2" in page.locator("#preview-segments").inner_text()
    assert violations_on(page) == []
    shot(page, f"announcement-preview-{width}")

    page.get_by_role("button", name="Send to 2 customers").click()
    page.wait_for_url("**/staff/announcements/*/")
    assert violations_on(page) == []
    page.locator("#announcement-status", has_text="Done").wait_for(timeout=20_000)
    assert page.locator("#figure-appended").inner_text() == "2"
    assert violations_on(page) == []
    shot(page, f"announcement-progress-{width}")
    announcement = Announcement.objects.get()
    assert announcement.status == Announcement.Status.DONE
    (entry,) = Entry.objects.filter(thread__customer=sarah, kind=Entry.Kind.AUTOMATED).filter(
        body__startswith="Rain today"
    )
    assert entry.body == "Rain today — we'll call to rebook, Sarah."

    page.get_by_role("link", name="All announcements").click()
    page.get_by_role("cell", name="2 of 2").wait_for()
    assert violations_on(page) == []
    shot(page, f"announcement-list-{width}")
