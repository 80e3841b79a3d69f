"""Shared fixtures: three personas (customer, staff, other customer) and service checks.

Tests marked `postgres` or `redis` need the real service. Locally, without it, they skip;
under CI (CI=true) a missing service fails the run instead, so nothing is silently skipped.
"""

from __future__ import annotations

import base64
import os
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection

from messaging import actions
from notifications.outbound import transports
from tests.factories import (
    BusinessFactory,
    CustomerFactory,
    ProjectFactory,
    StaffUserFactory,
    ThreadFactory,
)
from tests.fakes.postmark import FakePostmark
from tests.fakes.push import FakePushService
from tests.fakes.twilio import FakeTwilio

UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


# -- the whole run: settings, parallel workers, order, figures --------------------------------


def pytest_configure(config):
    _fast_password_hashes()
    _own_redis_per_worker(config)


def _own_redis_per_worker(config) -> None:
    """Each xdist worker (`make test` runs pytest -n) gets Redis databases of its own.
    pytest-django already gives each a test database of its own (test_<name>_gw0, …; for
    SQLite the file name), and ids start at 1 in every one of them: on one Redis, two workers'
    "thread-1-staff" groups, Celery queues and caches would be the same. Worker n takes
    REDIS_URL's database + 2n, and the one after it for the tests that need a database to
    themselves (a real Celery worker, the production shape: "REDIS_URL's database plus one").
    Ports: tests/servers.py's free_port."""
    worker = getattr(config, "workerinput", None)
    url = os.environ.get("REDIS_URL", "")
    if worker is None or not url:
        return
    index, count = int(worker["workerid"].removeprefix("gw")), int(worker["workercount"])
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    if base + 2 * count > 16:  # Redis has databases 0-15
        raise pytest.UsageError(
            f"REDIS_URL's database {base} leaves room for {(16 - base) // 2} xdist workers "
            f"(each takes two databases), not {count}: lower the database or -n"
        )
    if index:  # the first worker keeps REDIS_URL as it is
        _use_redis(url, urlunsplit(parts._replace(path=f"/{base + 2 * index}")))


def _use_redis(old: str, new: str) -> None:
    """Point this test process, and the servers and workers it starts (they inherit the
    environment), at another Redis database. Settings were read before conftest runs, so
    each setting made from REDIS_URL is changed here, and a check fails the run if one was
    missed (a setting added to portal/settings.py later)."""
    from django.conf import settings

    from portal.celery import app

    os.environ["REDIS_URL"] = new
    settings.REDIS_URL = new
    settings.CELERY_BROKER_URL = new
    app.conf.broker_url = new
    if settings.CACHES["default"].get("LOCATION") == old:
        settings.CACHES["default"]["LOCATION"] = new
    for layer in settings.CHANNEL_LAYERS.values():
        hosts = layer.get("CONFIG", {}).get("hosts")
        if hosts:
            layer["CONFIG"]["hosts"] = [new if host == old else host for host in hosts]
            if hosts != layer["CONFIG"]["hosts"] and "prefix" in layer["CONFIG"]:
                from portal.settings import channel_layer_prefix

                layer["CONFIG"]["prefix"] = channel_layer_prefix(new)

    def mentions_old(value) -> bool:
        if isinstance(value, str):
            return value == old
        if isinstance(value, dict):
            return any(mentions_old(v) for v in value.values())
        if isinstance(value, list | tuple | set):
            return any(mentions_old(v) for v in value)
        return False

    missed = [
        name for name in dir(settings) if name.isupper() and mentions_old(getattr(settings, name))
    ]
    if mentions_old(dict(app.conf)):
        missed.append("the Celery app's configuration")
    if missed:
        raise pytest.UsageError(f"still on {old} after moving this xdist worker's Redis: {missed}")


def _fast_password_hashes() -> None:
    """Passwords the tests set (staff fixtures, the demo's mike and kim) are hashed with MD5:
    the production hasher (PBKDF2, a million iterations) costs about half a second of CPU per
    password, hundreds of times per run. Hashes made by it are still checked (it stays in the
    list), and sign-in by password is still tested end to end; only the work factor differs.
    (Servers started by tests never check these passwords: they sign in by magic link.)"""
    from django.conf import settings
    from django.contrib.auth import hashers

    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]
    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()


# The longest tests and modules (pytest --durations of a `make test` run, docs/testing.md),
# longest first. Under xdist they start first, so that the end of the run is short tests
# shared out, not one worker finishing a long one while the other waits.
SLOW_FIRST = (
    "tests/reliability/test_r4_fuzzed_bodies.py",  # four parts
    "tests/e2e/test_accessibility.py::test_axe_finds_nothing_on_the_admins",
    "tests/reliability/test_r10_codes.py",
    "tests/reliability/test_r7_cut_off_clients.py",
    "tests/crm_events/test_schemathesis.py",
    "tests/reliability/test_r5_many_senders.py",
    "tests/deploy/test_shape.py",
    "tests/notifications/test_inbound_sms.py::test_random_signed_bodies",
    "tests/notifications/test_inbound_email.py::test_two_thousand_mangled",
    "tests/reliability/test_r6_killed_and_rolled_back.py",
    "tests/e2e/test_accessibility.py",
    "tests/test_browser_skips.py",
    "tests/reliability/test_r2_status_orders.py",
    "tests/reliability/test_r10_sign_in_and_xss.py",
    "tests/deploy/test_production_settings.py",
    "tests/crm_events/test_browser.py",
)


def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput"):
        return

    def rank(item) -> int:
        for index, prefix in enumerate(SLOW_FIRST):
            if item.nodeid.startswith(prefix):
                return index
        return len(SLOW_FIRST)

    items.sort(key=rank)  # stable: every other test keeps its place


# What the reliability tests measured (their `figures` fixture) travels with their reports;
# the main process prints it at the end, whichever process ran the test.
_FIGURES: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _FIGURES.extend(
            value for key, value in report.user_properties if key == "reliability figure"
        )


def _figure_order(line: str) -> tuple[int, str]:
    """R1 … R14 in number order, and "R10 codes" beside R10."""
    name = line.split(":")[0]
    digits = "".join(ch for ch in name[1:].split(" ")[0] if ch.isdigit())
    return (int(digits or 0), name)


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section("reliability figures")
        for line in sorted(_FIGURES, key=_figure_order):
            terminalreporter.write_line(line)


def _require(reason: str) -> None:
    if UNDER_CI:
        pytest.fail(f"CI requires this service: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _service_markers(request):
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _require("needs PostgreSQL (set DATABASE_URL)")
    if request.node.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        _require("needs Redis (set REDIS_URL)")


@pytest.fixture(autouse=True)
def _close_connections_of_sync_to_async_thread():
    """Async tests and consumers reach the ORM through sync_to_async, which (outside a
    server) runs in asgiref's one shared thread, and through the live sockets' threads: their
    connections would stay open after the test, and at the end of the run PostgreSQL refuses
    to drop a test database that a session still holds."""
    yield
    import threading

    from asgiref.sync import SyncToAsync
    from django.db import connections

    from messaging import consumers

    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
    # The live sockets' threads (messaging.consumers.live_executor) too: one call in each,
    # held at a barrier so that no thread takes two.
    executor = consumers._live_executor
    if executor is not None:
        barrier = threading.Barrier(executor._max_workers)

        def close_in_this_thread() -> None:
            barrier.wait(timeout=10)
            connections.close_all()

        for future in [executor.submit(close_in_this_thread) for _ in range(barrier.parties)]:
            future.result()


@pytest.fixture(autouse=True)
def _celery_tasks_run_inline():
    """Celery tasks run inline in every test, whatever REDIS_URL says, so a test sees the
    effect of the tasks its on-commit callbacks queue and nothing is left in a shared broker.
    Tests of the real worker (tests/notifications/test_worker.py) switch this off."""
    from portal.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@pytest.fixture(autouse=True)
def _fresh_caches(settings):
    """Each test starts with empty caches: rendered entries (cached per process) and the
    rate-limit counters, which live in Redis under CI and would otherwise carry from test to
    test. (Changing CACHES makes Django drop its cache connections.)"""
    from django.core.cache import caches

    caches["fragments"].clear()
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"},
    }
    caches["default"].clear()


@pytest.fixture
def business(db):
    return BusinessFactory()


@pytest.fixture
def customer(business):
    return CustomerFactory(
        business=business,
        name="Sarah Mitchell",
        user__username="sarah",
        email="sarah@example.com",
        phone="+15555550123",
    )


@pytest.fixture
def other_customer(business):
    return CustomerFactory(
        business=business,
        name="Daniel Ortiz",
        user__username="daniel",
        email="daniel@example.com",
        phone="+15555550188",
    )


@pytest.fixture
def staff(db):
    return StaffUserFactory(username="mike")


@pytest.fixture
def project(customer):
    return ProjectFactory(customer=customer, code="PRJ-1042")


@pytest.fixture
def thread(customer):
    return ThreadFactory(customer=customer)


@pytest.fixture
def other_thread(other_customer):
    return ThreadFactory(customer=other_customer)


@pytest.fixture
def customer_client(client, customer):
    client.force_login(customer.user)
    return client


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def secrets_thread(thread, staff):
    """A thread holding both kinds of staff-only text, for audience tests."""
    actions.post_staff_message(thread=thread, author=staff, body="Hi Sarah, visible to all.")
    actions.log_call(
        thread=thread,
        started_at=thread.customer.created_at,
        duration_seconds=360,
        transcript="TRANSCRIPT-SECRET cedar stain second coat",
        author=staff,
    )
    actions.add_internal_note(thread=thread, author=staff, body="NOTE-SECRET gate code 4512")
    thread.refresh_from_db()
    return thread


# -- the fake providers, wired into settings -------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture(scope="session")
def vapid_keys() -> tuple[str, str]:
    """(public, private) in the form `manage.py vapid_keys` prints."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(public), _b64url(key.private_numbers().private_value.to_bytes(32, "big"))


@pytest.fixture
def fake_twilio(settings):
    with FakeTwilio() as fake:
        for name, value in fake.settings().items():
            setattr(settings, name, value)
        yield fake
    transports._twilio.cache_clear()


@pytest.fixture
def fake_postmark(settings):
    with FakePostmark() as fake:
        for name, value in fake.settings().items():
            setattr(settings, name, value)
        yield fake
    transports._anymail_connection.cache_clear()


@pytest.fixture
def fake_push(settings, vapid_keys):
    public, private = vapid_keys
    with FakePushService(vapid_public_key=public) as fake:
        settings.VAPID_PUBLIC_KEY = public
        settings.VAPID_PRIVATE_KEY = private
        settings.WEB_PUSH_ENDPOINT_HOSTS = ["127.0.0.1"]
        yield fake
    transports._webpush.cache_clear()


@pytest.fixture
def providers(fake_twilio, fake_postmark, fake_push):
    """All three fakes at once, as (twilio, postmark, push)."""
    return fake_twilio, fake_postmark, fake_push


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed(): ...` runs what the block's commits would have queued (the tasks
    run inline), as if the test transaction had committed."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run
