"""The installable app in Debian's Chromium: the settings page registers the service worker,
the manifest passes Chromium's install criteria, a subscription posted to the page's own
endpoint receives the next message as a push the fake push service decrypts, and a page
that cannot load shows the offline page.

Chromium's own push service (Google's) is out of reach here, so the subscription is one with
keys the fake push service holds, posted by the page's JavaScript context like the real one.
"""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import Client

from messaging import actions
from notifications.models import Delivery, NotificationPreferences, PushSubscription
from tests.browser import CHROMIUM_ARGS, chromium_or_skip
from tests.notification_links import lands_on

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POST_SUBSCRIPTION = """async (subscription) => {
  const panel = document.getElementById("push-device");
  const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const response = await fetch(panel.dataset.subscribeUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRFToken": token},
    body: JSON.stringify(subscription),
  });
  return response.status;
}"""


@pytest.fixture
def signed_in(live_server, customer, settings, monkeypatch, tmp_path):
    """Chromium with a real (not incognito: apps cannot be installed from one) profile,
    signed in as Sarah."""
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    # Playwright's sync API keeps an event loop on this thread; the ORM calls between
    # browser steps are ordinary synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.SITE_URL = live_server.url
    client = Client()
    client.force_login(customer.user)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=executable, args=CHROMIUM_ARGS
        )
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
        yield context
        context.close()
        # ORM calls made while Playwright's loop runs get their own context-local connection,
        # which the test database's teardown would otherwise find still open.
        connections.close_all()


def test_the_app_installs_and_a_push_reaches_the_subscribed_device(
    signed_in, live_server, customer, staff, fake_push
):
    # The real clock may be in Sarah's quiet hours; this test is about the push itself.
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, quiet_hours_enabled=False
    )
    page = signed_in.new_page()
    page.goto(f"{live_server.url}/settings/notifications/")
    assert page.get_by_role("heading", name="Notification settings").is_visible()

    # The settings page registers the service worker, scoped to the whole site.
    scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
    assert scope == f"{live_server.url}/"

    # Chromium's own verdict on installability, and on the manifest.
    cdp = signed_in.new_cdp_session(page)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["errors"] == []
    assert manifest["url"] == f"{live_server.url}/manifest.webmanifest"

    # A subscription with known keys, posted where the page posts its own.
    subscription = fake_push.new_subscription()
    assert page.evaluate(POST_SUBSCRIPTION, subscription) == 201
    assert PushSubscription.objects.get().customer == customer

    thread = actions.ensure_thread(customer=customer)
    entry = actions.post_staff_message(
        thread=thread, author=staff, body="Hi Sarah, how did the deck come out?"
    )
    assert fake_push.rejections == []
    (push,) = fake_push.pushes
    assert push.payload["body"] == "Hi Sarah, how did the deck come out?"
    assert lands_on(push.payload["url"]) == (customer.pk, entry.pk, entry.seq, "push")
    assert Delivery.objects.get(entry=entry, channel="push").status == Delivery.Status.SENT


def test_a_page_that_cannot_load_shows_the_offline_page(signed_in, live_server):
    page = signed_in.new_page()
    page.goto(f"{live_server.url}/messages/")
    page.evaluate("async () => (await navigator.serviceWorker.ready).active.state")
    # The worker took control of this page and cached the offline page on install.
    page.reload()
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    signed_in.set_offline(True)
    try:
        page.goto(f"{live_server.url}/project/")
    finally:
        signed_in.set_offline(False)
    assert page.get_by_role("heading", name="You're offline").is_visible()
