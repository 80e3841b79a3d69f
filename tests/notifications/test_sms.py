"""SMS through the real twilio client, sent to the fake Twilio on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import time_machine

from messaging import actions
from notifications.models import Delivery, NotificationPreferences
from notifications.outbound import outbox, sending
from notifications.outbound.transports import SMS_MAX_LENGTH, ConsoleSms, TransportError, TwilioSms
from tests.fakes.base import Reply
from tests.notification_links import lands_on

UTC = dt.UTC
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db
S = Delivery.Status


@pytest.fixture(autouse=True)
def daytime():
    with time_machine.travel(DAYTIME, tick=False) as traveller:
        yield traveller


def sms(entry) -> Delivery:
    return Delivery.objects.get(entry=entry, channel="sms")


def test_mike_replies_and_the_text_reaches_sarahs_phone(fake_twilio, thread, staff, committed):
    with committed():
        entry = actions.post_staff_message(
            thread=thread, author=staff, body="Hi Sarah, how did the deck come out?"
        )
    (request,) = fake_twilio.requests
    # The real client, at TWILIO_API_BASE_URL, with the account's credentials.
    assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    assert request.form["To"] == "+15555550123"
    assert request.form["From"] == "+15555550142"
    assert request.form["Body"] == "Hi Sarah, how did the deck come out?"
    assert request.form["StatusCallback"].endswith(f"/webhooks/twilio/status/?d={sms(entry).pk}")
    delivery = sms(entry)
    assert delivery.status == S.SENT
    assert delivery.provider_id == fake_twilio.messages[0].sid
    assert delivery.attempts == 1


def test_a_customer_reply_is_texted_to_the_business_with_the_customers_name(
    fake_twilio, customer, committed
):
    with committed():
        actions.post_customer_reply(customer=customer, body="Sounds good! What time works?")
    (message,) = fake_twilio.messages
    assert message.to == "+15555550100"
    assert message.body == "Sarah Mitchell: Sounds good! What time works?"


def test_a_body_over_twilios_limit_ends_with_a_portal_link_instead_of_failing(
    fake_twilio, thread, staff, committed
):
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="word " * 900)
    (message,) = fake_twilio.messages
    assert len(message.body) <= SMS_MAX_LENGTH
    body, link = message.body.rsplit("… Read the rest: http://127.0.0.1:8000", 1)
    assert lands_on(link) == (thread.customer_id, entry.pk, entry.seq, "sms")
    assert sms(entry).status == S.SENT


def test_the_limit_counts_emoji_as_twilio_does(fake_twilio, thread, staff, committed):
    with committed():
        actions.post_staff_message(thread=thread, author=staff, body="🏠" * 1000)
    body = fake_twilio.messages[0].body
    assert len(body.encode("utf-16-le")) // 2 <= SMS_MAX_LENGTH
    assert "Read the rest" in body


def test_an_event_card_is_texted_with_a_link_that_signs_in_and_opens_it(
    fake_twilio, thread, committed
):
    with committed():
        card = actions.post_event_card(
            thread=thread, card_kind="invoice", title="Invoice #2041 sent — $4,200", link_url="/i/"
        )
    title, link = fake_twilio.messages[0].body.split("\nhttp://127.0.0.1:8000")
    assert title == "Invoice #2041 sent — $4,200"
    assert lands_on(link) == (thread.customer_id, card.pk, card.seq, "sms")


def test_a_bad_number_is_a_recorded_permanent_failure(fake_twilio, thread, staff, committed):
    fake_twilio.fail_number("+15555550123", 21211)
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    delivery = sms(entry)
    assert delivery.status == S.FAILED
    assert "21211" in delivery.last_error and "not a valid phone number" in delivery.last_error
    assert delivery.attempts == 1
    # Not retried: the sweeper leaves failures alone, and the entry is intact.
    outbox.sweep_deliveries(now=DAYTIME + dt.timedelta(hours=2))
    assert len(fake_twilio.requests) == 1
    assert entry.body == "Hi"


def test_a_landline_is_a_recorded_permanent_failure(fake_twilio, thread, staff, committed):
    fake_twilio.fail_next(30006)
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    assert sms(entry).status == S.FAILED
    assert "30006" in sms(entry).last_error


def test_an_unsubscribed_number_opts_the_customer_out_and_goes_by_email(
    fake_twilio, fake_postmark, thread, staff, customer, committed, daytime
):
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, email_enabled=False
    )
    fake_twilio.fail_number("+15555550123", 21610)
    with committed():
        first = actions.post_staff_message(thread=thread, author=staff, body="First")
    assert sms(first).status == S.FAILED
    assert "21610" in sms(first).last_error
    assert NotificationPreferences.objects.get(customer=customer).sms_opted_out
    # This message goes by email instead (after the email delay)...
    assert Delivery.objects.get(entry=first, channel="email").status == S.QUEUED

    # ...and so does the next one, which makes no SMS at all.
    with committed():
        second = actions.post_staff_message(thread=thread, author=staff, body="Second")
    assert not Delivery.objects.filter(entry=second, channel="sms").exists()
    assert len(fake_twilio.requests) == 1

    daytime.shift(dt.timedelta(minutes=3))
    with committed():
        outbox.sweep_deliveries()
    (email,) = fake_postmark.emails
    assert "First" in email.text and "Second" in email.text
    assert email.to == "Sarah Mitchell <sarah@example.com>"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [(20429, "20429"), (30003, "30003"), (429, "429"), (500, "500"), (503, "503")],
)
def test_transient_errors_are_retried_later_with_backoff(
    fake_twilio, thread, staff, committed, daytime, failure, reason
):
    fake_twilio.fail_next(failure)
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    delivery = sms(entry)
    assert delivery.status == S.QUEUED
    assert reason in delivery.last_error and "will retry" in delivery.last_error
    # First retry waits 10–20 s (base 20 s, jitter ×0.5–1).
    wait = delivery.send_after - DAYTIME
    assert dt.timedelta(seconds=10) <= wait <= dt.timedelta(seconds=20)

    # Not before its time...
    with committed():
        outbox.sweep_deliveries()
    assert len(fake_twilio.requests) == 1
    # ...then it goes.
    daytime.shift(dt.timedelta(seconds=21))
    with committed():
        sending.send_delivery(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == S.SENT
    assert delivery.attempts == 2
    assert len(fake_twilio.messages) == 1


def test_a_provider_that_does_not_answer_in_time_is_a_transient_error(
    fake_twilio, thread, staff, committed, settings
):
    settings.NOTIFICATIONS_PROVIDER_TIMEOUT = 0.2
    fake_twilio.script(Reply(201, {}, delay=1.0))
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    assert sms(entry).status == S.QUEUED
    assert "did not answer" in sms(entry).last_error


def test_after_the_last_attempt_a_transient_error_is_recorded_as_a_failure(
    fake_twilio, thread, staff, committed, daytime, settings
):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    fake_twilio.fail_next(500, 500, 500, 500)
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    for _ in range(4):
        daytime.shift(dt.timedelta(hours=1))
        with committed():
            sending.send_delivery(delivery_id=sms(entry).pk)
    delivery = sms(entry)
    assert delivery.status == S.FAILED
    assert delivery.attempts == 3
    assert "gave up after 3 attempts" in delivery.last_error
    assert len(fake_twilio.requests) == 3


def test_backoff_grows_and_is_capped(settings):
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 20
    settings.NOTIFICATIONS_RETRY_MAX_SECONDS = 600
    for attempts, ceiling in [(1, 20), (2, 40), (3, 80), (6, 600), (12, 600)]:
        waits = {sending.backoff(attempts).total_seconds() for _ in range(20)}
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(waits) > 1  # jittered


def test_without_twilio_credentials_sms_go_to_the_log(thread, staff, committed, caplog):
    with caplog.at_level(logging.INFO, logger="notifications.outbound.transports"), committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Console please")
    assert "SMS (console) to +15555550123" in caplog.text
    assert "Console please" in caplog.text
    assert sms(entry).status == S.SENT
    assert sms(entry).provider_id.startswith("console-")


def test_the_twilio_transport_raises_transport_errors_with_the_permanent_flag(fake_twilio):
    transport = TwilioSms(
        account_sid=fake_twilio.account_sid,
        auth_token="wrong-token",
        from_number="+15555550100",
        base_url=fake_twilio.url,
        timeout=5,
    )
    with pytest.raises(TransportError) as error:
        transport.send(to="+15555550123", body="Hi")
    assert error.value.permanent  # bad credentials do not get better by retrying
    assert error.value.code == 20003
    assert isinstance(ConsoleSms().send(to="+15555550123", body="x"), str)


def test_a_garbled_answer_from_twilio_is_a_transient_error(fake_twilio, thread, staff, committed):
    fake_twilio.script(Reply(201, "<html>not json</html>"))
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    assert sms(entry).status == S.QUEUED
    assert "not JSON" in sms(entry).last_error


def test_an_unexpected_error_is_retried_and_then_recorded_never_a_loop(
    fake_twilio, thread, staff, committed, daytime, settings, monkeypatch
):
    # Stands in for a bug of ours: the SMS transport blows up with something that is not a
    # TransportError. The row must end "failed", not bounce between workers forever.
    class Broken:
        def send(self, **kwargs):
            raise KeyError("boom")

    monkeypatch.setattr("notifications.outbound.transports.sms_transport", Broken)
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    assert sms(entry).status == S.QUEUED
    assert sms(entry).last_error == "Internal error (KeyError) (attempt 1; will retry)"
    daytime.shift(dt.timedelta(hours=1))
    with committed():
        outbox.sweep_deliveries()
    assert sms(entry).status == S.FAILED
    assert sms(entry).last_error == "Internal error (KeyError) (gave up after 2 attempts)"


def test_a_delivery_whose_worker_dies_at_every_attempt_is_given_up(
    fake_twilio, thread, staff, committed, daytime, settings
):
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi", notify=False)
    delivery = Delivery.objects.create(
        entry=entry,
        channel="sms",
        audience="customer",
        recipient="+15555550123",
        status=S.SENDING,
        attempts=settings.NOTIFICATIONS_MAX_ATTEMPTS,
        claimed_at=DAYTIME,
        send_after=DAYTIME,
        created_at=DAYTIME,
    )
    daytime.shift(dt.timedelta(hours=1))
    with committed():
        outbox.sweep_deliveries()
    delivery.refresh_from_db()
    assert delivery.status == S.FAILED
    assert delivery.last_error == "No worker finished sending it in 8 attempts"
    assert fake_twilio.requests == []


def test_each_worker_thread_keeps_its_own_twilio_client(fake_twilio):
    # The worker runs tasks on threads: one client (and HTTP session) per thread, reused.
    import threading

    from notifications.outbound import transports

    here = [transports.sms_transport(), transports.sms_transport()]
    there = []
    worker = threading.Thread(target=lambda: there.append(transports.sms_transport()))
    worker.start()
    worker.join()
    assert isinstance(here[0], TwilioSms) and here[0] is here[1]
    assert there[0] is not here[0] and isinstance(there[0], TwilioSms)


@pytest.mark.postgres  # the pool is PostgreSQL's (settings: DB_POOL)
@pytest.mark.django_db(transaction=True)
def test_a_pooled_connection_goes_back_to_the_pool_while_twilio_answers(fake_twilio, thread, staff):
    # The worker's threads share a pool of fewer connections than threads: a send waiting on
    # its provider must not hold one.
    import threading

    from django.db import connection

    assert connection.settings_dict["OPTIONS"].get("pool")
    fake_twilio.hold_next()
    sender_connection = []

    def post() -> None:
        from django.db import connections

        sender_connection.append(connections["default"])  # this thread's own
        try:
            # Committed here, so the delivery is sent (inline) in this thread.
            actions.post_staff_message(thread=thread, author=staff, body="While Twilio thinks")
        finally:
            connections.close_all()

    sender = threading.Thread(target=post)
    sender.start()
    try:
        assert fake_twilio.wait_until_held(timeout=20)
        assert sender_connection[0].connection is None  # back in the pool
    finally:
        fake_twilio.release()
        sender.join(timeout=30)
    delivery = Delivery.objects.get(entry__thread=thread, channel="sms")
    assert delivery.status == S.QUEUED and "will retry" in delivery.last_error
