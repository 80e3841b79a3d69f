"""Browser tests: Debian's Chromium driven by Playwright against the real ASGI server
(tests/servers.py) running in its own process on the test database, with the Redis channel
layer when REDIS_URL is set (always under CI)."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from sesame.utils import get_token

from portal.models import Customer
from tests.browser import CHROMIUM_ARGS, chromium_or_skip
from tests.servers import UNLIMITED_RATES, AsgiServer, database_url

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def start_server(*, port: int | None = None, **env: str) -> AsgiServer:
    """The project's ASGI server on the test database (a second one shares Redis)."""
    return AsgiServer(
        database_url=database_url(connection.settings_dict),
        port=port,
        env={"SECRET_KEY": settings.SECRET_KEY, **UNLIMITED_RATES, **env},
    ).start()


@pytest.fixture
def server(transactional_db, request):
    """The server; a test marked `@pytest.mark.server_env(DEBUG="1")` gets those settings."""
    marker = request.node.get_closest_marker("server_env")
    srv = start_server(**(marker.kwargs if marker else {}))
    yield srv
    srv.stop()


@pytest.fixture
def demo(transactional_db):
    """The demo data (`manage.py demo`): (Sarah, mike)."""
    call_command("demo")
    return (
        Customer.objects.get(email="sarah@example.com"),
        get_user_model().objects.get(username="mike"),
    )


# Module scope: Playwright's sync API keeps an event loop running in this thread while it
# is open, and the async (pytest-asyncio) tests that run after these need the thread free.
@pytest.fixture(scope="module")
def browser():
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_as(browser, server):
    """open_as(user, width=…) -> a signed-in page, signed in through the real magic link."""
    contexts = []

    def _open(user, *, width: int = 1280, height: int = 860):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{server.url}/login/magic/?sesame={get_token(user)}")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state("networkidle")
        return page

    yield _open
    for context in contexts:
        context.close()
