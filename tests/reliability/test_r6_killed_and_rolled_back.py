"""R6: a worker killed mid-send x 100 and rolled-back transactions x 100 -> 0 lost, 0 sent
for rolled-back rows.

(a) What a killed worker leaves behind is a Delivery it claimed (status sending, claimed_at,
one attempt) and never recorded a result for. Each of 100 rows is brought to exactly that
state through the real claim (`sending.claim_delivery`, the first step of the deliver task);
the real sweeper then runs with its clock past the lease and re-drives them through the real
deliver task, here run inline. The fake Twilio must receive each text exactly once. (A real
`celery worker` process killed while the provider hangs is tests/notifications/test_worker.py;
it costs seconds per kill, so it is not repeated 100 times here.)

(b) 100 real transactions (PostgreSQL, transaction=True: commits are real, so on-commit
broadcasts and tasks would really fire) each post a message, which writes its Delivery rows,
and then raise. Nothing may survive them: no entry, no Delivery, no request at any fake, even
after the sweeper has run with its clock a day ahead.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging import actions
from messaging.models import Entry, Thread
from notifications import tasks
from notifications.models import Delivery, NotificationPreferences
from notifications.outbound import outbox, preferences, sending
from tests.notifications.brokers import publishing_to

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

S = Delivery.Status
KILLED = 100
ROLLED_BACK = 100


class Boom(Exception):
    """What ends each rolled-back transaction."""


def test_killed_sends_are_all_redriven_once_and_rolled_back_posts_send_nothing(
    providers, customer, staff, figures
):
    twilio, postmark, push = providers
    # No quiet hours whatever the real clock says: every delivery is due at once.
    # SMS only for part (a), so each message makes one delivery.
    NotificationPreferences.objects.create(
        customer=customer,
        time_zone=customer.time_zone,
        quiet_hours_enabled=False,
        email_enabled=False,
    )
    thread = actions.ensure_thread(customer=customer)

    # -- (a) killed mid-send ---------------------------------------------------------------
    # The tasks go to an in-memory broker nobody consumes: no worker ever runs them.
    with publishing_to("memory://localhost/"):
        for n in range(KILLED):
            actions.post_staff_message(thread=thread, author=staff, body=f"killed {n}")
    deliveries = list(Delivery.objects.order_by("pk"))
    assert [d.channel for d in deliveries] == ["sms"] * KILLED

    # Each worker claims its row and dies before the provider answers.
    claims = [sending.claim_delivery(d.pk) for d in deliveries]
    assert all(claim is not None for claim in claims)
    stuck = Delivery.objects.filter(status=S.SENDING, claimed_at__isnull=False, sent_at=None)
    assert stuck.count() == KILLED
    assert twilio.requests == []

    # Inside the lease the sweeper leaves them alone: their workers might still be alive.
    assert outbox.sweep_deliveries().redriven == 0
    lease = dt.timedelta(seconds=settings.NOTIFICATIONS_SENDING_LEASE_SECONDS)
    later = timezone.now() + lease + dt.timedelta(seconds=1)
    redriven = outbox.sweep_deliveries(now=later).redriven  # publishes; tasks run inline
    assert redriven == KILLED

    # Any stray second run of the task (a broker redelivery) sends nothing more.
    extra_runs = [
        tasks.deliver.apply(args=[d.pk]).get(disable_sync_subtasks=False) for d in deliveries
    ]
    assert extra_runs == [None] * KILLED
    assert outbox.sweep_deliveries(now=later + lease * 2).redriven == 0

    bodies = Counter(m.body for m in twilio.messages)
    assert bodies == Counter({f"killed {n}": 1 for n in range(KILLED)})
    finished = Counter(Delivery.objects.values_list("status", "attempts"))
    assert finished == {(S.SENT, 2): KILLED}
    lost = KILLED - sum(1 for count in bodies.values() if count >= 1)
    doubled = sum(count - 1 for count in bodies.values())
    sent = len(twilio.messages)

    # -- (b) rolled back -------------------------------------------------------------------
    twilio.reset()
    twilio.messages.clear()
    prefs = NotificationPreferences.objects.get(customer=customer)
    preferences.update_preferences(
        customer=customer,
        sms_enabled=True,
        email_enabled=True,
        push_enabled=True,
        quiet_hours_enabled=False,
        quiet_start=prefs.quiet_start,
        quiet_end=prefs.quiet_end,
        time_zone=prefs.time_zone,
    )
    info = push.new_subscription()
    preferences.subscribe_push(
        customer=customer,
        endpoint=info["endpoint"],
        p256dh=info["keys"]["p256dh"],
        auth=info["keys"]["auth"],
    )
    entries_before = Entry.objects.count()
    deliveries_before = Delivery.objects.count()
    posts = [
        lambda n: actions.post_staff_message(thread=thread, author=staff, body=f"undone {n}"),
        lambda n: actions.post_customer_reply(customer=customer, body=f"undone reply {n}"),
        lambda n: actions.post_automated_message(thread=thread, body=f"undone auto {n}"),
    ]
    planned_inside = 0
    for n in range(ROLLED_BACK):
        with pytest.raises(Boom), transaction.atomic():
            posts[n % len(posts)](n)
            planned_inside += Delivery.objects.count() - deliveries_before
            raise Boom

    # Every one of them had planned deliveries before it rolled back.
    assert planned_inside >= ROLLED_BACK
    # The sweeper finds nothing of theirs, however late it runs.
    a_day_later = timezone.now() + dt.timedelta(days=1)
    swept = outbox.sweep_deliveries(now=a_day_later)
    assert swept == outbox.SweepResult()
    assert Entry.objects.count() == entries_before
    assert Delivery.objects.count() == deliveries_before
    assert Thread.objects.get(pk=thread.pk).last_seq == KILLED
    at_fakes = len(twilio.requests) + len(postmark.requests) + len(push.requests)
    assert at_fakes == 0

    figures(
        f"{KILLED} sends killed between claim and result -> {redriven} re-driven, "
        f"{sent} sent, {lost} lost, {doubled} sent twice; "
        f"{ROLLED_BACK} rolled-back posts ({planned_inside} deliveries planned inside) -> "
        f"{Entry.objects.count() - entries_before} entries, "
        f"{Delivery.objects.count() - deliveries_before} deliveries, {at_fakes} provider requests"
    )
