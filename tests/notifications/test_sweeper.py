"""Nothing lost, nothing doubled: the periodic sweeper releases held deliveries on time,
re-drives ones a dead worker left in sending, re-queues ones whose task was lost; the claim
makes any number of runs of a task send once."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import time_machine
from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone

from messaging import actions
from notifications import tasks
from notifications.models import Delivery, NotificationPreferences
from notifications.outbound import outbox, preferences, sending, transports
from tests.notifications.brokers import publishing_to

UTC = dt.UTC
ELEVEN_PM = dt.datetime(2025, 5, 16, 3, 0, tzinfo=UTC)  # 11:00pm in New York
EIGHT_AM = dt.datetime(2025, 5, 16, 12, 0, tzinfo=UTC)  # 8:00am the next morning
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=UTC)

S = Delivery.Status


@pytest.mark.django_db
def test_held_deliveries_go_at_the_end_of_quiet_hours_and_not_before(
    providers, customer, thread, staff, committed
):
    twilio, postmark, push = providers
    info = push.new_subscription()
    preferences.subscribe_push(
        customer=customer,
        endpoint=info["endpoint"],
        p256dh=info["keys"]["p256dh"],
        auth=info["keys"]["auth"],
    )
    with time_machine.travel(ELEVEN_PM, tick=False) as clock:
        with committed():
            entry = actions.post_staff_message(thread=thread, author=staff, body="See you soon")
        statuses = set(Delivery.objects.values_list("status", flat=True))
        assert statuses == {S.HELD}

        for at in (ELEVEN_PM + dt.timedelta(hours=4), EIGHT_AM - dt.timedelta(seconds=1)):
            clock.move_to(at)
            with committed():
                assert outbox.sweep_deliveries().released == 0
        assert (twilio.requests, postmark.requests, push.requests) == ([], [], [])

        clock.move_to(EIGHT_AM)
        with committed():
            assert outbox.sweep_deliveries().released == 3
    assert [m.body for m in twilio.messages] == ["See you soon"]
    assert len(push.pushes) == 1
    assert len(postmark.emails) == 1
    assert set(Delivery.objects.filter(entry=entry).values_list("status", flat=True)) == {S.SENT}


@pytest.mark.django_db
def test_at_11pm_the_sms_waits_for_morning_while_an_urgent_one_goes_now(
    fake_twilio, thread, staff, committed
):
    with time_machine.travel(ELEVEN_PM, tick=False), committed():
        waits = actions.post_staff_message(thread=thread, author=staff, body="Invoice is ready")
        urgent = actions.post_automated_message(
            thread=thread, body="Crew is on the way", urgent=True
        )
    assert [m.body for m in fake_twilio.messages] == ["Crew is on the way"]
    held = Delivery.objects.get(entry=waits, channel="sms")
    assert (held.status, held.send_after) == (S.HELD, EIGHT_AM)
    assert Delivery.objects.get(entry=urgent, channel="sms").status == S.SENT


@pytest.mark.django_db
def test_turning_quiet_hours_off_releases_what_they_held(
    fake_twilio, customer_client, customer, thread, staff, committed
):
    with time_machine.travel(ELEVEN_PM, tick=False):
        actions.post_staff_message(thread=thread, author=staff, body="Held")
        with committed():
            response = customer_client.post(
                "/settings/notifications/",
                {
                    "sms_enabled": "on",
                    "email_enabled": "on",
                    "quiet_start": "21:00",
                    "quiet_end": "08:00",
                    "time_zone": "America/New_York",
                },
            )
        assert response.status_code == 302
    assert [m.body for m in fake_twilio.messages] == ["Held"]


@pytest.mark.django_db
def test_a_later_window_end_moves_what_is_held(customer, thread, staff):
    with time_machine.travel(ELEVEN_PM, tick=False):
        entry = actions.post_staff_message(thread=thread, author=staff, body="Held")
        preferences.update_preferences(
            customer=customer,
            sms_enabled=True,
            email_enabled=True,
            push_enabled=True,
            quiet_hours_enabled=True,
            quiet_start=dt.time(22, 0),
            quiet_end=dt.time(9, 30),
            time_zone="America/New_York",
        )
    held = Delivery.objects.get(entry=entry, channel="sms")
    assert held.send_after == EIGHT_AM + dt.timedelta(hours=1, minutes=30)


@pytest.mark.django_db
def test_a_delivery_left_in_sending_by_a_dead_worker_is_sent_again_after_the_lease(
    fake_twilio, thread, staff, committed, settings
):
    with time_machine.travel(DAYTIME, tick=False) as clock:
        # The task is queued to an in-memory broker nobody consumes: it never runs.
        with publishing_to("memory://localhost/"), committed():
            entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
        delivery = Delivery.objects.get(entry=entry, channel="sms")
        # A worker claims it, and dies before the provider call.
        assert sending.claim_delivery(delivery.pk) is not None
        assert Delivery.objects.get(pk=delivery.pk).status == S.SENDING

        clock.shift(dt.timedelta(seconds=settings.NOTIFICATIONS_SENDING_LEASE_SECONDS - 1))
        with committed():
            assert outbox.sweep_deliveries().redriven == 0
        assert fake_twilio.requests == []

        clock.shift(dt.timedelta(seconds=2))
        with committed():
            assert outbox.sweep_deliveries().redriven == 1
    delivery.refresh_from_db()
    assert delivery.status == S.SENT
    assert delivery.attempts == 2
    assert [m.body for m in fake_twilio.messages] == ["Hi"]


@pytest.mark.django_db
def test_a_text_sent_while_the_database_was_away_is_recorded_by_the_sweeper_not_sent_again(
    fake_twilio, thread, staff, committed, settings
):
    with time_machine.travel(DAYTIME, tick=False) as clock:
        with publishing_to("memory://localhost/"), committed():
            entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
        delivery = Delivery.objects.get(entry=entry, channel="sms")
        claim = sending.claim_delivery(delivery.pk)
        # The provider takes the text; recording it fails (the database restarting), so the
        # worker keeps the answer aside as sending._record_sent does on OperationalError.
        sid = transports.sms_transport().send(to=delivery.recipient, body="Hi")
        outbox.keep_result_aside(
            delivery.pk, token=claim.token, provider_id=sid, sent_at=timezone.now(), note=""
        )
        clock.shift(dt.timedelta(seconds=settings.NOTIFICATIONS_SENDING_LEASE_SECONDS + 1))
        with committed():
            result = outbox.sweep_deliveries()
        assert result.redriven == 0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_id, delivery.attempts) == (S.SENT, sid, 1)
    assert [m.body for m in fake_twilio.messages] == ["Hi"]


@pytest.mark.django_db
def test_sending_a_message_succeeds_with_redis_down_and_it_is_delivered_later(
    fake_twilio, thread, staff, committed, settings, caplog
):
    with time_machine.travel(DAYTIME, tick=False) as clock:
        # Nothing listens on port 1: every publish is refused.
        with publishing_to("redis://127.0.0.1:1/0"), committed():
            started = time.monotonic()
            entry = actions.post_staff_message(thread=thread, author=staff, body="Still here")
        assert time.monotonic() - started < 5  # gives up fast instead of hanging the request
        assert "could not queue delivery" in caplog.text
        delivery = Delivery.objects.get(entry=entry, channel="sms")
        assert delivery.status == S.QUEUED
        assert fake_twilio.requests == []

        # Redis is back; the sweeper re-queues it once its task is overdue.
        clock.shift(dt.timedelta(seconds=settings.NOTIFICATIONS_QUEUED_GRACE_SECONDS - 1))
        with committed():
            assert outbox.sweep_deliveries().requeued == 0
        clock.shift(dt.timedelta(seconds=2))
        with committed():
            assert outbox.sweep_deliveries().requeued == 1
    assert [m.body for m in fake_twilio.messages] == ["Still here"]


@pytest.mark.django_db
def test_sweeping_twice_sends_nothing_twice(fake_twilio, thread, staff, committed):
    with time_machine.travel(ELEVEN_PM, tick=False) as clock:
        actions.post_staff_message(thread=thread, author=staff, body="Once")
        clock.move_to(EIGHT_AM)
        with committed():
            outbox.sweep_deliveries()
            outbox.sweep_deliveries()
        clock.shift(dt.timedelta(hours=1))
        with committed():
            outbox.sweep_deliveries()
    assert len(fake_twilio.requests) == 1


@pytest.mark.django_db
def test_running_one_task_twenty_times_sends_once(fake_twilio, thread, staff):
    entry = actions.post_staff_message(thread=thread, author=staff, body="Once", notify=False)
    delivery = Delivery.objects.create(
        entry=entry,
        channel="sms",
        audience="customer",
        recipient="+15555550123",
        send_after=timezone.now(),
        created_at=timezone.now(),
    )
    results = [
        tasks.deliver.apply(args=[delivery.pk]).get(disable_sync_subtasks=False) for _ in range(20)
    ]
    assert results.count(S.SENT) == 1
    assert results.count(None) == 19
    assert len(fake_twilio.requests) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_runs_of_one_task_send_once(fake_twilio, customer, staff):
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, quiet_hours_enabled=False
    )
    thread = actions.ensure_thread(customer=customer)
    entry = actions.post_staff_message(thread=thread, author=staff, body="Once", notify=False)
    delivery = Delivery.objects.create(
        entry=entry,
        channel="sms",
        audience="customer",
        recipient="+15555550123",
        send_after=timezone.now(),
        created_at=timezone.now(),
    )
    runs = 20
    barrier = threading.Barrier(runs)
    results: list = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(tasks.deliver.apply(args=[delivery.pk]).get(disable_sync_subtasks=False))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run) for _ in range(runs)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    assert results.count(S.SENT) == 1
    assert results.count(None) == runs - 1
    assert len(fake_twilio.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (S.SENT, 1)


@pytest.mark.django_db
def test_staff_see_held_until_8am_for_quiet_hours(thread, staff):
    with time_machine.travel(ELEVEN_PM, tick=False):
        entry = actions.post_staff_message(thread=thread, author=staff, body="Held")
    deliveries = list(Delivery.objects.filter(entry=entry))
    with timezone.override("America/New_York"):
        html = render_to_string(
            "notifications/_delivery_status.html",
            {"entry": entry, "deliveries": deliveries, "audience": "staff"},
        )
    assert "Held until" in html and "8:00am" in html and "(quiet hours)" in html


@pytest.mark.django_db
def test_the_send_notifications_command_sweeps_once(fake_twilio, thread, staff, committed):
    from io import StringIO

    from django.core.management import CommandError, call_command

    with time_machine.travel(ELEVEN_PM, tick=False) as clock:
        actions.post_staff_message(thread=thread, author=staff, body="Morning news")
        clock.move_to(EIGHT_AM)
        out = StringIO()
        with committed():
            call_command("send_notifications", stdout=out)
    assert "sending inline (no Redis)" in out.getvalue()
    assert "released 2" in out.getvalue()
    assert [m.body for m in fake_twilio.messages] == ["Morning news"]
    with pytest.raises(CommandError):
        call_command("send_notifications", "--every", "0")
