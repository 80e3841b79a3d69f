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


def wait_until_live(page) -> None:
    """Until the page's live socket has opened: thread.js keeps it on the thread's element
    then, after the consumer joined the thread's groups (it joins before it accepts)."""
    page.wait_for_function("() => Boolean(document.querySelector('[data-thread]')?._socket)")


# Resolves after three frames in a row with no htmx request in flight and no swap settling:
# new content is processed when it settles, and a trigger it brings ("intersect once")
# fires within the frame after.
QUIET = """async () => {
  const busy = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added";
  for (let quiet = 0, frames = 0; quiet < 3; frames++) {
    if (frames > 1000) {
      throw new Error(`htmx never went quiet: ${document.querySelector(busy)?.outerHTML}`);
    }
    await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
    quiet = document.querySelector(busy) ? 0 : quiet + 1;
  }
}"""


def wait_until_quiet(page) -> None:
    """Until htmx has nothing in flight and nothing about to start."""
    page.evaluate(QUIET)


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
        # Signed in when the page it lands on has loaded and htmx has nothing in flight (the
        # pages fetch nothing else by themselves). "networkidle" waited half a second of
        # silence more on each of the suite's 61 sign-ins.
        page.wait_for_url(lambda url: "/login/" not in url)
        wait_until_quiet(page)
        return page

    yield _open
    for context in contexts:
        context.close()
