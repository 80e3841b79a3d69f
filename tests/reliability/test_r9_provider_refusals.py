"""R9: providers that say no. A push service that forgot a device (404, 410), refuses a
payload (413) or says slow down (429); Twilio's 21610 and a customer's STOP; quiet hours.
Devices are removed, nothing is retried into a storm, and what waits is held, not lost: the
sweeper (given its `now`) sends it when it is due, once."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.conf import settings as django_settings

from messaging import actions
from notifications.models import Delivery, NotificationPreferences, PushSubscription
from notifications.outbound import outbox, preferences
from tests.fakes.base import Reply

pytestmark = pytest.mark.django_db
S = Delivery.Status
UTC = dt.UTC
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=UTC)  # 10:00am in New York
ELEVEN_PM = dt.datetime(2025, 5, 16, 3, 0, tzinfo=UTC)  # 11:00pm in New York
EIGHT_AM = dt.datetime(2025, 5, 16, 12, 0, tzinfo=UTC)  # 8:00am the next morning
NEXT_DAY = dt.datetime(2025, 5, 16, 15, 0, tzinfo=UTC)
SITE = "http://127.0.0.1:8000"


class World:
    """The clock and the fakes, with the sweeper run at a given time."""

    def __init__(self, clock, committed, twilio, postmark, push):
        self.clock, self.committed = clock, committed
        self.twilio, self.postmark, self.push = twilio, postmark, push

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def at(self, when: dt.datetime):
        self.clock.move_to(when)
        return when

    def sweep(self, when: dt.datetime):
        # The worker's claim reads the clock too: the sweep and the send happen at `when`.
        self.at(when)
        with self.committed():
            return outbox.sweep_deliveries(now=when)

    def post(self, thread, staff, body: str):
        with self.committed():
            return actions.post_staff_message(thread=thread, author=staff, body=body)

    def requests(self) -> tuple[int, int, int]:
        return len(self.twilio.requests), len(self.postmark.requests), len(self.push.requests)

    def pushes_to(self, subscription) -> int:
        device = subscription.endpoint.rsplit("/", 1)[-1]
        return sum(r.path.endswith(f"/push/{device}") for r in self.push.requests)


def subscribe(customer, fake_push) -> PushSubscription:
    info = fake_push.new_subscription()
    return preferences.subscribe_push(
        customer=customer,
        endpoint=info["endpoint"],
        p256dh=info["keys"]["p256dh"],
        auth=info["keys"]["auth"],
    )


def delivery(entry, channel: str) -> Delivery:
    return Delivery.objects.get(entry=entry, channel=channel)


# -- the phases ------------------------------------------------------------------------------


def push_service_forgot_the_device(world: World, customer, thread, staff) -> str:
    lines = []
    for gone in (404, 410):
        device = subscribe(customer, world.push)
        world.push.expire(device.endpoint, status=gone)
        entry = world.post(thread, staff, f"Push answered {gone}")
        push = delivery(entry, "push")
        assert push.status == S.FAILED and push.attempts == 1
        assert push.last_error == f"Subscription expired ({gone}); device removed"
        assert not PushSubscription.objects.filter(pk=device.pk).exists()
        # Sweeps hours later send nothing more to it; the next message plans no push at all.
        world.sweep(world.now() + dt.timedelta(hours=1))
        later = world.post(thread, staff, f"After {gone}")
        assert not Delivery.objects.filter(entry=later, channel="push").exists()
        assert world.pushes_to(device) == 1
        lines.append(f"push {gone} -> device removed after {world.pushes_to(device)} request")
    return "; ".join(lines)


def payload_too_large(world: World, customer, thread, staff) -> tuple[str, PushSubscription]:
    device = subscribe(customer, world.push)
    world.push.script(Reply(413, "payload too large"))
    entry = world.post(thread, staff, "Push answered 413")
    push = delivery(entry, "push")
    assert push.status == S.FAILED and "413" in push.last_error
    world.sweep(world.now() + dt.timedelta(hours=1))
    push.refresh_from_db()
    assert push.status == S.FAILED and push.attempts == 1
    assert world.pushes_to(device) == 1
    # The device is fine: only that payload was refused.
    assert PushSubscription.objects.filter(pk=device.pk).exists()
    return f"push 413 -> failed after {world.pushes_to(device)} request, device kept", device


def slow_down(world: World, device, thread, staff) -> str:
    """429 at every attempt: each retry waits longer than the last, and after the last
    attempt it fails. Sweeps between attempts send nothing."""
    max_attempts = django_settings.NOTIFICATIONS_MAX_ATTEMPTS
    world.push.fail_next(*[429] * max_attempts)
    before = world.pushes_to(device)
    started = world.now()
    entry = world.post(thread, staff, "Push answered 429")
    push = delivery(entry, "push")
    tried_at, gaps, early_sweeps = [started], [], 0
    while push.status == S.QUEUED:
        assert "429" in push.last_error and "will retry" in push.last_error
        assert world.pushes_to(device) - before == push.attempts
        due = push.send_after
        # Halfway to its time and a second before it, the sweeper leaves it alone.
        for early in (tried_at[-1] + (due - tried_at[-1]) / 2, due - dt.timedelta(seconds=1)):
            world.sweep(early)
            early_sweeps += 1
            assert world.pushes_to(device) - before == push.attempts
        world.sweep(due)
        gaps.append((due - tried_at[-1]).total_seconds())
        tried_at.append(due)
        push.refresh_from_db()
    attempts = world.pushes_to(device) - before
    assert push.status == S.FAILED
    assert f"gave up after {max_attempts} attempts" in push.last_error
    assert attempts == push.attempts == max_attempts
    # Backoff: every wait longer than the one before (base x 2^n, jitter x 0.5-1).
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:], strict=False))
    assert gaps[0] >= django_settings.NOTIFICATIONS_RETRY_BASE_SECONDS / 2
    assert PushSubscription.objects.filter(pk=device.pk).exists()
    return (
        f"push 429 x{attempts} -> {attempts} requests (max {max_attempts}) over "
        f"{(tried_at[-1] - started).total_seconds() / 60:.0f} min, waits "
        f"{gaps[0]:.0f}s..{gaps[-1]:.0f}s, {early_sweeps} early sweeps sent 0, then failed"
    )


def quiet_hours(world: World, thread, staff) -> str:
    world.sweep(ELEVEN_PM - dt.timedelta(hours=1))  # nothing earlier left due
    world.at(ELEVEN_PM)
    entry = world.post(thread, staff, "Held for the morning")
    held = list(Delivery.objects.filter(entry=entry))
    assert {(d.channel, d.status, d.send_after) for d in held} == {
        (channel, S.HELD, EIGHT_AM) for channel in ("sms", "email", "push")
    }
    before = world.requests()
    for early in (ELEVEN_PM + dt.timedelta(hours=4), EIGHT_AM - dt.timedelta(seconds=1)):
        assert world.sweep(early).released == 0
    assert world.requests() == before
    released = world.sweep(EIGHT_AM).released
    assert world.sweep(EIGHT_AM + dt.timedelta(minutes=5)).released == 0
    sent = [a - b for a, b in zip(world.requests(), before, strict=True)]
    assert released == 3 and sent == [1, 1, 1]
    statuses = set(Delivery.objects.filter(entry=entry).values_list("status", flat=True))
    assert statuses == {S.SENT}
    assert [m.body for m in world.twilio.messages][-1] == "Held for the morning"
    return (
        f"quiet hours -> {len(held)} held until 8am, 0 sent before, "
        f"{released} released at 8am and sent once each ({sum(sent)} requests)"
    )


def twilio_21610(world: World, customer, thread, staff) -> str:
    world.at(NEXT_DAY)
    prefs = NotificationPreferences.for_customer(customer)
    prefs.email_enabled = False  # texts only: the fallback to email shows
    prefs.save()
    world.twilio.fail_number(customer.phone, 21610)
    to_her = len([r for r in world.twilio.requests if r.form.get("To") == customer.phone])
    first = world.post(thread, staff, "First after 21610")
    assert (
        delivery(first, "sms").status == S.FAILED and "21610" in delivery(first, "sms").last_error
    )
    assert NotificationPreferences.objects.get(customer=customer).sms_opted_out
    fallback = delivery(first, "email")
    assert fallback.fallback_for_id == delivery(first, "sms").pk
    second = world.post(thread, staff, "Second after 21610")
    assert not Delivery.objects.filter(entry=second, channel="sms").exists()
    assert delivery(second, "email").status == S.QUEUED
    world.sweep(NEXT_DAY + dt.timedelta(minutes=5))
    sms_requests = len([r for r in world.twilio.requests if r.form.get("To") == customer.phone])
    assert sms_requests - to_her == 1
    assert {delivery(e, "email").status for e in (first, second)} == {S.SENT}
    assert "First after 21610" in world.postmark.emails[-1].text
    return (
        f"Twilio 21610 -> opted out after {sms_requests - to_her} SMS request, "
        "that message and the next by email, 0 more SMS"
    )


def inbound_stop(world: World, client, customer, thread, staff) -> str:
    path = "/webhooks/twilio/sms/"
    form, signature = world.twilio.inbound(f"{SITE}{path}", sender=customer.phone, body="STOP")
    with world.committed():
        assert client.post(path, form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    assert NotificationPreferences.objects.get(customer=customer).sms_opted_out
    later = world.post(thread, staff, "After STOP")
    assert set(Delivery.objects.filter(entry=later).values_list("channel", flat=True)) == {"email"}
    world.sweep(world.now() + dt.timedelta(minutes=5))
    assert delivery(later, "email").status == S.SENT
    texts = [m for m in world.twilio.messages if m.to == customer.phone]
    assert texts == []
    return f"STOP -> opted out, {len(texts)} SMS to them after, next message by email"


# -- the test --------------------------------------------------------------------------------


def test_provider_refusals_remove_devices_never_storm_and_hold_without_losing(
    client, providers, customer, thread, other_customer, other_thread, staff, committed, figures
):
    twilio, postmark, push = providers
    with time_machine.travel(DAYTIME, tick=False) as clock:
        world = World(clock, committed, twilio, postmark, push)
        lines = [push_service_forgot_the_device(world, customer, thread, staff)]
        line, device = payload_too_large(world, customer, thread, staff)
        lines += [line, slow_down(world, device, thread, staff)]
        lines.append(quiet_hours(world, thread, staff))
        lines.append(twilio_21610(world, customer, thread, staff))
        world.at(NEXT_DAY + dt.timedelta(hours=1))
        lines.append(inbound_stop(world, client, other_customer, other_thread, staff))
    # Nothing left behind: every delivery reached an end (none queued, held or sending).
    assert not Delivery.objects.filter(status__in=[S.QUEUED, S.HELD, S.SENDING]).exists()
    figures("; ".join(lines))
