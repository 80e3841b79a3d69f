"""A real Celery worker (`celery -A portal worker`, a subprocess) against the real Redis and
the test database: messages committed here are sent by it to the fake Twilio; a worker killed
between claim and send is re-driven by the sweeper and the fake then receives the send.

The worker and this process share a dedicated Redis database (REDIS_URL's number plus one),
whose queue is emptied first, so nothing else's tasks are consumed and none are left behind.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.db import connection
from django.utils import timezone

from messaging import actions
from notifications.models import Delivery, NotificationPreferences
from notifications.outbound import outbox
from tests.notifications.brokers import publishing_to
from tests.servers import CeleryWorker, database_url

ROOT = Path(__file__).resolve().parents[2]
S = Delivery.Status

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def dedicated_redis_url() -> str:
    parts = urlsplit(os.environ["REDIS_URL"])
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


@pytest.fixture
def worker_env(fake_twilio, settings):
    broker = dedicated_redis_url()
    client = redis.Redis.from_url(broker)
    # Only this test's queue: kombu's keys for the default queue and its unacked set.
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    env = {
        "SECRET_KEY": "worker-test-only",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": broker,
        "SITE_URL": settings.SITE_URL,
        "LOG_LEVEL": "INFO",
        **{name: str(value) for name, value in fake_twilio.settings().items()},
    }
    with publishing_to(broker):
        yield env
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    client.close()


@pytest.fixture
def workers(worker_env):
    started: list[CeleryWorker] = []

    def start() -> CeleryWorker:
        started.append(CeleryWorker(env=worker_env).start())
        return started[-1]

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
def sarah(customer):
    # Whatever the real clock says, no quiet hours; SMS only, so one delivery per message.
    NotificationPreferences.objects.create(
        customer=customer,
        time_zone=customer.time_zone,
        quiet_hours_enabled=False,
        email_enabled=False,
    )
    return customer


def wait_for_status(delivery: Delivery, status: str, timeout: float = 20) -> Delivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery.refresh_from_db()
        if delivery.status == status:
            return delivery
        time.sleep(0.05)
    pytest.fail(f"delivery stayed {delivery.status}, expected {status}")


def test_a_real_worker_sends_a_committed_message_to_the_fake_twilio(
    workers, fake_twilio, sarah, staff
):
    worker = workers()
    thread = actions.ensure_thread(customer=sarah)
    entry = actions.post_staff_message(thread=thread, author=staff, body="From the worker")
    (request,) = fake_twilio.wait_for(1, timeout=30)
    assert request.form["To"] == "+15555550123"
    assert request.form["Body"] == "From the worker"
    delivery = wait_for_status(Delivery.objects.get(entry=entry), S.SENT)
    assert delivery.provider_id == fake_twilio.messages[0].sid
    assert any("notifications.deliver" in line for line in worker.output)


def test_a_worker_killed_between_claim_and_send_is_redriven_by_the_sweeper(
    workers, fake_twilio, sarah, staff, settings
):
    first = workers()
    # The provider hangs on the first request, so the worker is stuck mid-send when killed.
    fake_twilio.hold_next()
    thread = actions.ensure_thread(customer=sarah)
    entry = actions.post_staff_message(thread=thread, author=staff, body="Do not lose me")
    assert fake_twilio.wait_until_held(timeout=30)
    delivery = Delivery.objects.get(entry=entry)
    assert delivery.status == S.SENDING
    first.kill()
    fake_twilio.release()
    assert fake_twilio.messages == []  # nothing was sent

    workers()
    # Inside the lease nothing happens: the worker might still be alive.
    assert outbox.sweep_deliveries().redriven == 0
    later = timezone.now() + dt.timedelta(seconds=settings.NOTIFICATIONS_SENDING_LEASE_SECONDS + 1)
    assert outbox.sweep_deliveries(now=later).redriven == 1

    delivery = wait_for_status(delivery, S.SENT, timeout=30)
    assert [m.body for m in fake_twilio.messages] == ["Do not lose me"]
    assert delivery.attempts == 2


def test_one_message_queues_a_sends_deliveries_and_the_worker_sends_each_at_its_time(
    workers, worker_env, fake_twilio, customer, staff, settings
):
    # SMS now and the email after its short delay: one message to the broker (the request's
    # one round trip); the worker sends the SMS and queues the email for its own time.
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, quiet_hours_enabled=False
    )
    settings.EMAIL_NOTIFICATION_DELAY_SECONDS = 2
    worker_env["EMAIL_NOTIFICATION_DELAY_SECONDS"] = "2"
    worker = workers()
    thread = actions.ensure_thread(customer=customer)
    entry = actions.post_staff_message(thread=thread, author=staff, body="Both ways")
    sms, email = (
        Delivery.objects.get(entry=entry, channel=channel) for channel in ("sms", "email")
    )
    wait_for_status(sms, S.SENT)
    sent = wait_for_status(email, S.SENT)
    assert sent.sent_at >= email.send_after
    assert any("notifications.deliver_many" in line for line in worker.output)
