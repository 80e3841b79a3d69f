"""Planning: which Delivery rows an entry calls for, on which channel, and when.

Runs inside the entry's append transaction (called only by `messaging.actions`), so an entry
and its notifications commit or roll back together: nothing lost, nothing phantom.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from messaging.models import INBOUND_KINDS, Entry, Side
from notifications import queries
from notifications.models import (
    Delivery,
    NotificationPreferences,
    StaffNotificationPreferences,
    StaffPushSubscription,
)
from notifications.outbound import outbox, transports
from notifications.outbound.quiet_hours import QuietHours, release_time
from portal import mentions
from portal.models import Customer

logger = logging.getLogger(__name__)

Status = Delivery.Status
Channel = Delivery.Channel
Audience = Delivery.Audience

HOLD_QUIET_HOURS = "quiet_hours"
HOLD_EMAIL_DELAY = "email_delay"


def plan_deliveries(*, entry: Entry, customer: Customer) -> list[Delivery]:
    """Write the Delivery rows `entry` calls for and queue their tasks on commit.

    To the customer (what they should read: staff, automated and CRM messages): one row per
    channel they enabled and can be reached on, held until the end of quiet hours unless the
    entry is urgent; email waits EMAIL_NOTIFICATION_DELAY_SECONDS in case they read it in the
    portal first. To the business (what staff should read: customer replies): the assignee
    of the thread on the channels they chose (`staff_route`), or, when the thread is
    unassigned or its assignee cannot be reached, one row by the routing rule in
    `business_route`. An internal note tells the staff members it mentions (@kim), and never
    the customer; call markers make none.
    """
    now = timezone.now()
    if entry.kind in INBOUND_KINDS[Side.CUSTOMER]:
        rows = _plan_for_customer(entry=entry, customer=customer, now=now)
    elif entry.kind in INBOUND_KINDS[Side.STAFF]:
        rows = _plan_for_assignee(entry=entry, customer=customer, now=now)
        if not rows:
            rows = _plan_for_business(entry=entry, customer=customer, now=now)
    elif entry.kind == Entry.Kind.INTERNAL_NOTE:
        rows = _plan_for_mentions(entry=entry, now=now)
    else:
        rows = []
    if rows:
        Delivery.objects.bulk_create(rows)
        outbox.queue_on_commit([row for row in rows if row.status == Status.QUEUED])
    # The sender's response shows these under the entry: no query for what was just written.
    queries.attach_deliveries(entry, rows)
    return rows


def text_channels(customer: Customer, prefs: NotificationPreferences) -> list[tuple]:
    """(channel, recipient) of SMS and email a customer is told on now. A channel they chose
    but that cannot reach them (they replied STOP; their email bounced) hands over to the
    other, so they still hear from us."""
    sms, email = prefs.reachable_by_sms(customer), prefs.reachable_by_email(customer)
    channels = []
    if sms and (prefs.sms_enabled or (prefs.email_enabled and not email)):
        channels.append((Channel.SMS, customer.phone))
    if email and (prefs.email_enabled or (prefs.sms_enabled and not sms)):
        channels.append((Channel.EMAIL, customer.email))
    return channels


def _customer_channels(customer: Customer, prefs: NotificationPreferences) -> list[tuple]:
    """(channel, recipient) pairs a customer can be reached on right now."""
    channels = text_channels(customer, prefs)
    if prefs.push_enabled and transports.push_configured():
        devices = customer.push_subscriptions.count()
        if devices:
            channels.append((Channel.PUSH, describe_devices(devices)))
    return channels


def describe_devices(count: int) -> str:
    return f"{count} device{'s' if count != 1 else ''}"


def quiet_hours_of(prefs: NotificationPreferences) -> QuietHours | None:
    if not prefs.quiet_hours_enabled:
        return None
    return QuietHours(start=prefs.quiet_start, end=prefs.quiet_end, time_zone=prefs.time_zone)


def _customer_schedule(
    *, channel: str, urgent: bool, prefs: NotificationPreferences, now: dt.datetime
) -> tuple[str, dt.datetime, str]:
    """(status, send_after, hold_reason) for one channel of a customer notification."""
    release = now if urgent else release_time(quiet_hours_of(prefs), now)
    if channel == Channel.EMAIL:
        delay = dt.timedelta(seconds=settings.EMAIL_NOTIFICATION_DELAY_SECONDS)
        if now + delay > release:
            return Status.QUEUED, now + delay, HOLD_EMAIL_DELAY
    if release > now:
        return Status.HELD, release, HOLD_QUIET_HOURS
    return Status.QUEUED, now, ""


def customer_delivery(
    *,
    entry: Entry,
    channel: str,
    recipient: str,
    prefs: NotificationPreferences,
    now: dt.datetime,
    fallback_for: Delivery | None = None,
) -> Delivery:
    status, send_after, reason = _customer_schedule(
        channel=channel, urgent=entry.urgent, prefs=prefs, now=now
    )
    return Delivery(
        entry=entry,
        channel=channel,
        audience=Audience.CUSTOMER,
        recipient=recipient,
        status=status,
        hold_reason=reason,
        send_after=send_after,
        task_eta=outbox.task_eta(status, send_after, now),
        created_at=now,
        fallback_for=fallback_for,
    )


def _plan_for_customer(*, entry: Entry, customer: Customer, now: dt.datetime) -> list[Delivery]:
    prefs = NotificationPreferences.for_customer(customer)
    return [
        customer_delivery(entry=entry, channel=channel, recipient=recipient, prefs=prefs, now=now)
        for channel, recipient in _customer_channels(customer, prefs)
    ]


def business_route(customer: Customer) -> tuple[str, str] | None:
    """How a customer's reply reaches the business: by SMS when the customer has a phone on
    file (phone only, or phone and email) and the business can receive SMS; otherwise by
    email."""
    business = customer.business
    if customer.phone and business.sms_number:
        return Channel.SMS, business.sms_number
    if business.email:
        return Channel.EMAIL, business.email
    return None


def _plan_for_business(*, entry: Entry, customer: Customer, now: dt.datetime) -> list[Delivery]:
    route = business_route(customer)
    if route is None:
        logger.warning("business %s has neither SMS nor email; reply not notified", customer)
        return []
    channel, recipient = route
    return [
        Delivery(
            entry=entry,
            channel=channel,
            audience=Audience.BUSINESS,
            recipient=recipient,
            status=Status.QUEUED,
            send_after=now,
            task_eta=outbox.task_eta(Status.QUEUED, now, now),
            created_at=now,
        )
    ]


# -- staff members: the assignee, and whoever a note mentions ---------------------------------


def staff_route(user) -> list[tuple[str, str]]:
    """(channel, recipient) pairs a staff member hears on, by their own preferences: email
    to the address on their account, push to the devices they subscribed. Empty when they
    cannot be reached (both off, no address, no device), or are no longer active staff."""
    if not (user.is_active and user.is_staff):
        return []
    prefs = StaffNotificationPreferences.for_user(user)
    channels = []
    if prefs.email_enabled and user.email:
        channels.append((Channel.EMAIL, user.email))
    if prefs.push_enabled and transports.push_configured():
        devices = StaffPushSubscription.objects.filter(user=user).count()
        if devices:
            channels.append((Channel.PUSH, describe_devices(devices)))
    return channels


def _staff_deliveries(*, entry: Entry, user, now: dt.datetime) -> list[Delivery]:
    return [
        Delivery(
            entry=entry,
            channel=channel,
            audience=Audience.STAFF,
            staff_user=user,
            recipient=recipient,
            status=Status.QUEUED,
            send_after=now,
            task_eta=outbox.task_eta(Status.QUEUED, now, now),
            created_at=now,
        )
        for channel, recipient in staff_route(user)
    ]


def _plan_for_assignee(*, entry: Entry, customer: Customer, now: dt.datetime) -> list[Delivery]:
    """A customer's message in an assigned thread goes to its assignee alone; the others see
    it as unread on the list. An assignee who cannot be reached is no reason for the message
    to reach nobody: the caller then tells the business as for an unassigned thread."""
    if customer.assigned_to_id is None:
        return []
    return _staff_deliveries(entry=entry, user=customer.assigned_to, now=now)


def _plan_for_mentions(*, entry: Entry, now: dt.datetime) -> list[Delivery]:
    """Each active staff member the note names (@kim) hears of it once, whatever the number
    of times it names them; unknown names stay text, and writing your own name tells no one."""
    rows = []
    for user in mentions.mentioned_staff(entry.body):
        if user.pk != entry.author_id:
            rows.extend(_staff_deliveries(entry=entry, user=user, now=now))
    return rows
