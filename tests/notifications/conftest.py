"""Fixtures for the notification tests: the fake providers, wired into settings, and helpers
that run what a commit would queue."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifications import transports
from tests.factories import StaffUserFactory
from tests.fakes.postmark import FakePostmark
from tests.fakes.push import FakePushService
from tests.fakes.twilio import FakeTwilio


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
def staff(db):
    """Mike, without a usable password: these tests never sign in with one, and hashing it
    (PBKDF2) costs most of a second per test."""
    return StaffUserFactory(username="mike", password=None)


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
