"""Reads for notifications. Every function here runs a fixed number of queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from messaging.models import Entry
from notifications.models import Delivery, NotificationPreferences, PushSubscription
from portal.models import Business, Customer

# Staff read channels in this order on every entry.
CHANNEL_ORDER = {Delivery.Channel.SMS: 0, Delivery.Channel.EMAIL: 1, Delivery.Channel.PUSH: 2}


def preferences_for(customer: Customer) -> NotificationPreferences:
    """The customer's preferences, or the defaults when they never saved any (one query)."""
    return NotificationPreferences.for_customer(customer)


def preferences_initial(prefs: NotificationPreferences) -> dict:
    return {
        "sms_enabled": prefs.sms_enabled,
        "email_enabled": prefs.email_enabled,
        "push_enabled": prefs.push_enabled,
        "quiet_hours_enabled": prefs.quiet_hours_enabled,
        "quiet_start": prefs.quiet_start,
        "quiet_end": prefs.quiet_end,
        "time_zone": prefs.time_zone,
    }


def push_device_count(customer: Customer) -> int:
    return PushSubscription.objects.filter(customer=customer).count()


def business_name() -> str:
    """The business's name (one business per deployment today)."""
    return Business.objects.values_list("name", flat=True).order_by("pk").first() or ""


def deliveries_by_entry(entry_ids: Iterable[int]) -> dict[int, list[Delivery]]:
    """Each entry's deliveries, SMS then email then push, in one query whatever the number of
    entries: for the staff chat, which shows them under each message."""
    ids = list(entry_ids)
    grouped: dict[int, list[Delivery]] = defaultdict(list)
    if not ids:
        return {}
    for delivery in Delivery.objects.filter(entry_id__in=ids).order_by("entry_id", "pk"):
        grouped[delivery.entry_id].append(delivery)
    for deliveries in grouped.values():
        deliveries.sort(key=lambda d: (CHANNEL_ORDER.get(d.channel, 9), d.audience))
    return dict(grouped)


def attach_deliveries(entries: Iterable[Entry]) -> None:
    """Set `entry.delivery_list` on each entry (one query), for
    templates/notifications/_delivery_status.html."""
    entries = list(entries)
    found = deliveries_by_entry(e.pk for e in entries)
    for entry in entries:
        entry.delivery_list = found.get(entry.pk, [])
