"""docker-compose.yml's shape, run here without Docker: Caddy (deploy/Caddyfile) in front of
two web processes (deploy/web.sh, the image's command, started by tests/servers.py: uvicorn,
proxy headers from the proxy's address only, collected static files), one Celery worker
with beat, on the real PostgreSQL and Redis, with the fake Twilio.

Sarah's browser talks to the proxy, which puts her WebSocket on one of the two processes;
mike sends one message through each process directly, so at least one crosses from one
process to the other through Redis. Each reaches her page live, and each SMS reaches the
fake Twilio exactly once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import requests
from django.conf import settings
from django.db import connection
from playwright.sync_api import expect
from sesame.utils import get_token

from messaging.models import Entry
from notifications.models import NotificationPreferences
from tests.conftest import _require
from tests.e2e import conftest as e2e
from tests.servers import (
    UNLIMITED_RATES,
    AsgiServer,
    Caddy,
    CeleryWorker,
    database_url,
    free_port,
)

ROOT = Path(__file__).resolve().parents[2]

# The shared headless Chromium (tests/e2e/conftest.py), one per module.
browser = e2e.browser

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def dedicated_redis_url() -> str:
    """REDIS_URL's database plus one (as tests/notifications/test_worker.py): this shape's
    queue, channel layer and cache, apart from every other test's."""
    parts = urlsplit(os.environ["REDIS_URL"])
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    """collectstatic as the image runs it: hashed names, gzip and Brotli copies."""
    root = tmp_path_factory.mktemp("static")
    env = {**os.environ, "PORCHLIGHT_ENV_FILE": "", "SECRET_KEY": "x", "STATIC_ROOT": str(root)}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    return root


@pytest.fixture
def sarah(customer, project):
    # SMS only and no quiet hours, whatever the real clock says: one SMS per message.
    NotificationPreferences.objects.create(
        customer=customer,
        time_zone=customer.time_zone,
        quiet_hours_enabled=False,
        email_enabled=False,
        push_enabled=False,
    )
    return customer


@pytest.fixture
def shape(fake_twilio, static_root, tmp_path, sarah, staff, thread):
    """(proxy, [web1, web2]) running, with the worker, on a Redis database of their own."""
    broker = dedicated_redis_url()
    client = redis.Redis.from_url(broker)
    client.flushdb()
    web_ports = [free_port(), free_port()]
    proxy_home = tmp_path / "caddy"
    proxy_home.mkdir()
    executable = shutil.which("caddy") or _require(
        "needs Debian's caddy (apt-get install caddy; .ci/run installs it)"
    )
    caddy = Caddy(executable, [f"127.0.0.1:{port}" for port in web_ports], proxy_home)
    env = {
        "SECRET_KEY": settings.SECRET_KEY,
        "REDIS_URL": broker,
        "SITE_URL": caddy.url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(static_root),
        "MEDIA_ROOT": str(tmp_path / "media"),
        # As docker-compose.yml gives the proxy's address; here everything is 127.0.0.1.
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        **UNLIMITED_RATES,
        **{name: str(value) for name, value in fake_twilio.settings().items()},
    }
    db_url = database_url(connection.settings_dict)
    webs = [
        AsgiServer(database_url=db_url, port=port, env=env, server="deploy/web.sh")
        for port in web_ports
    ]
    worker = CeleryWorker(env={**env, "DATABASE_URL": db_url, "LOG_LEVEL": "INFO"}, beat=True)
    try:
        for web in webs:
            web.start()
        worker.start()
        with caddy:
            yield caddy, webs
    finally:
        worker.stop()
        for web in webs:
            web.stop()
        client.flushdb()
        client.close()


def test_the_proxy_answers_health_and_static_files_never_media_nor_a_clients_forwarded_proto(
    shape,
):
    proxy, webs = shape
    health = requests.get(f"{proxy.url}/health/", timeout=10)
    assert health.status_code == 200, health.text
    assert set(health.json().values()) == {"OK"}
    assert len(health.json()) == 4  # database, cache, channel layer, broker

    page = requests.get(f"{proxy.url}/login/", timeout=10)
    assert page.headers["Cache-Control"] == "private, no-store"
    assert "script-src 'self' 'nonce-" in page.headers["Content-Security-Policy"]
    css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page.text).group(1)
    asset = requests.get(f"{proxy.url}{css}", headers={"Accept-Encoding": "br"}, timeout=10)
    assert asset.status_code == 200
    assert asset.headers["Content-Encoding"] == "br"
    assert "immutable" in asset.headers["Cache-Control"]
    assert "max-age=315360000" in asset.headers["Cache-Control"]

    assert requests.get(f"{proxy.url}/media/logos/x.png", timeout=10).status_code == 404

    def seen_as(url: str) -> str:
        """The scheme and host Django built an absolute URL from (its reporting endpoint)."""
        request = urllib.request.Request(f"{url}/login/", headers={"X-Forwarded-Proto": "https"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return re.search(r'csp="(\w+)://', response.headers["Reporting-Endpoints"]).group(1)

    # A client's own X-Forwarded-Proto never gets through Caddy, which sets the real one.
    assert seen_as(proxy.url) == "http"
    # From the configured proxy address the web process believes it (here the test itself
    # stands at that address): this is how Django sees https behind the real proxy.
    assert seen_as(webs[0].url) == "https"


def _sign_in(context, base_url: str, user):
    page = context.new_page()
    page.goto(f"{base_url}/login/magic/?sesame={get_token(user)}")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")
    user.refresh_from_db()  # one-time links are tied to last_login
    return page


def test_a_message_sent_through_either_web_process_reaches_sarah_live_and_texts_her_once(
    shape, browser, sarah, staff, thread, fake_twilio
):
    proxy, webs = shape
    sarah_context = browser.new_context()
    # Her tab is in the background (a phone in a pocket): what arrives is not read there, so
    # the SMS goes (one read in the portal first is not texted).
    sarah_context.add_init_script(
        "Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'});"
    )
    mike_context = browser.new_context()
    try:
        sarah_page = _sign_in(sarah_context, proxy.url, sarah.user)
        expect(sarah_page.get_by_placeholder("Type a reply…")).to_be_visible()
        e2e.wait_until_live(sarah_page)  # her socket, through the proxy

        mike_page = _sign_in(mike_context, webs[0].url, staff)
        for n, web in enumerate(webs, start=1):
            mike_page.goto(f"{web.url}/staff/chat/{thread.pk}/")
            box = mike_page.locator("dialog#chat-dialog").get_by_placeholder("Type a reply…")
            box.fill(f"Sent through web process {n}")
            box.press("Enter")
            expect(
                sarah_page.locator(".bubble", has_text=f"Sent through web process {n}")
            ).to_be_visible(timeout=10_000)
    finally:
        sarah_context.close()
        mike_context.close()

    sent = fake_twilio.wait_for(2, timeout=30)
    time.sleep(1)  # anything sent twice would have arrived by now
    bodies = sorted(m.body for m in fake_twilio.messages)
    assert len(bodies) == 2, bodies
    assert "Sent through web process 1" in bodies[0]
    assert "Sent through web process 2" in bodies[1]
    assert {m.to for m in fake_twilio.messages} == {"+15555550123"}
    assert len(sent) == 2
    assert Entry.objects.filter(thread=thread, body__startswith="Sent through").count() == 2
