"""Fallback: a customer notification that failed for good on one channel goes by the other,
once, with a note for staff saying what happened.

An email that bounced goes by SMS; an SMS the carrier refused for good (or to a number that
replied STOP) goes by email. Each entry has at most one delivery per channel (a unique
constraint), so a fallback that fails too cannot fall back again: never both twice, never a
loop. The note is an internal note in the thread, so staff see it where they work.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging import actions as thread_actions
from messaging import live
from notifications.models import Delivery, NotificationPreferences
from notifications.outbound import outbox, planning
from portal.phones import format_phone

logger = logging.getLogger(__name__)

Channel = Delivery.Channel
OTHER = {Channel.SMS: Channel.EMAIL, Channel.EMAIL: Channel.SMS}
NAMES = {Channel.SMS: "SMS", Channel.EMAIL: "email"}
CAPITALISED = {Channel.SMS: "SMS", Channel.EMAIL: "Email"}


def fall_back(*, failed: Delivery, reason: str) -> Delivery | None:
    """`failed` (a customer's delivery) will never arrive, because `reason` ("bounced",
    "was refused by the carrier (Twilio 30006)"...): send the entry by the other channel if
    the customer can be reached on it, and tell staff. Returns the new delivery, if any."""
    other = OTHER.get(failed.channel)
    if other is None or failed.audience != Delivery.Audience.CUSTOMER:
        return None
    entry = failed.entry
    customer = entry.thread.customer
    prefs = NotificationPreferences.for_customer(customer)
    reachable = (
        prefs.reachable_by_email(customer)
        if other == Channel.EMAIL
        else prefs.reachable_by_sms(customer)
    )
    created = None
    if reachable:
        row = planning.customer_delivery(
            entry=entry,
            channel=other,
            recipient=customer.email if other == Channel.EMAIL else customer.phone,
            prefs=prefs,
            now=timezone.now(),
            fallback_for=failed,
        )
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            pass  # the entry already goes (or went) that way
        else:
            created = row
            if row.status == Delivery.Status.QUEUED:
                outbox.queue_on_commit([row])
            live.broadcast_deliveries_changed_on_commit([(entry.thread_id, entry.seq)])
    where = failed.recipient if failed.channel == Channel.EMAIL else format_phone(failed.recipient)
    what = f"{CAPITALISED[failed.channel]} to {where} {reason}"
    if created is not None:
        note = f"{what} — sent by {NAMES[other]} instead."
    elif reachable:
        note = f"{what} — it already goes by {NAMES[other]} too."
    else:
        note = f"{what} — {customer.first_name} cannot be reached by {NAMES[other]} either."
    thread_actions.add_internal_note(
        thread=entry.thread, author=None, body=note, idempotency_key=f"fallback:{failed.pk}"
    )
    return created


def mark_email_bounced(*, deliveries: list[Delivery]) -> None:
    """Their address bounced: their next notifications go by SMS until an email to them is
    delivered again (or they save their settings)."""
    now = timezone.now()
    customers = {d.entry.thread.customer_id: d.entry.thread.customer for d in deliveries}
    for customer in customers.values():
        prefs, created = NotificationPreferences.objects.get_or_create(
            customer=customer, defaults={"time_zone": customer.time_zone, "email_bounced_at": now}
        )
        if not created and prefs.email_bounced_at is None:
            NotificationPreferences.objects.filter(pk=prefs.pk).update(email_bounced_at=now)


def clear_email_bounced(*, deliveries: list[Delivery]) -> None:
    """An email to them was delivered: their address works again."""
    customer_ids = {d.entry.thread.customer_id for d in deliveries}
    NotificationPreferences.objects.filter(
        customer_id__in=customer_ids, email_bounced_at__isnull=False
    ).update(email_bounced_at=None)
