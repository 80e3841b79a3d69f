"""Shared fixtures: three personas (customer, staff, other customer) and service checks.

Tests marked `postgres` or `redis` need the real service. Locally, without it, they skip;
under CI (CI=true) a missing service fails the run instead, so nothing is silently skipped.
"""

from __future__ import annotations

import base64
import os

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
