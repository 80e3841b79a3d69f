"""Reads for notifications. Every function here runs a fixed number of queries."""

from __future__ import annotations

from django.db import connection
from django.db.models import Case, IntegerField, Prefetch, Value, When

from messaging.models import Entry
from notifications.models import (
    Delivery,
    InboundMessage,
    NotificationPreferences,
    PushSubscription,
)
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


def deliveries_prefetch() -> Prefetch:
    """Each entry's deliveries, SMS then email then push, for the staff timeline
    (templates/notifications/_delivery_status.html): one query for a whole page."""
    channel_rank = Case(
        *(When(channel=channel, then=Value(rank)) for channel, rank in CHANNEL_ORDER.items()),
        output_field=IntegerField(),
    )
    return Prefetch(
        "deliveries",
        queryset=Delivery.objects.select_related("staff_user").order_by(
            channel_rank, "audience", "staff_user_id"
        ),
    )


def attach_deliveries(entry, rows: list[Delivery]) -> None:
    """Put the rows an append just wrote on `entry` as if `deliveries_prefetch` had loaded
    them, in its order: the sender's response renders the entry's status line from them
    instead of asking the database for what this transaction wrote. A snapshot, as any
    prefetch is: `entry.deliveries.all()` shows them as written, not as a worker moved them
    on since (a fresh query does)."""
    manager = entry.deliveries
    loaded = manager.get_queryset()
    # What Django's own prefetch_related_objects stores for a reverse foreign key.
    loaded._result_cache = sorted(
        rows,
        key=lambda d: (CHANNEL_ORDER.get(d.channel, len(CHANNEL_ORDER)), d.audience,
                       d.staff_user_id is None, d.staff_user_id or 0),
    )  # fmt: skip
    loaded._prefetch_done = True
    entry._prefetched_objects_cache = {
        **getattr(entry, "_prefetched_objects_cache", {}),
        manager.field.remote_field.cache_name: loaded,
    }


def delivery_state(entry) -> tuple:
    """Everything the status line (notifications/_delivery_status.html) shows of an entry's
    deliveries: part of the key of its cached staff HTML (messaging.rendering)."""
    # str(): rows just written hold their choices as enum members (attach_deliveries), rows
    # loaded hold strings; the key must not tell them apart.
    return tuple(
        (d.pk, str(d.channel), str(d.audience), d.staff_user_id, str(d.status),
         str(d.hold_reason), d.attempts, d.last_error, d.send_after, d.sent_at, d.delivered_at)
        for d in entry.deliveries.all()
    )  # fmt: skip


def unmatched_messages(limit: int = 200) -> list[InboundMessage]:
    """What came in and is in no thread yet: strangers' texts and emails, and refused ones,
    newest first."""
    waiting = [InboundMessage.Status.UNMATCHED, InboundMessage.Status.REJECTED]
    return list(InboundMessage.objects.filter(status__in=waiting)[:limit])


def unmatched_count() -> int:
    waiting = [InboundMessage.Status.UNMATCHED, InboundMessage.Status.REJECTED]
    return InboundMessage.objects.filter(status__in=waiting).count()


def customer_for_unsubscribe(customer_id: int | None) -> Customer | None:
    """The customer an unsubscribe link names (its signature already checked), or None."""
    if customer_id is None:
        return None
    return Customer.objects.select_related("business").filter(pk=customer_id).first()


def earlier_emails(*, thread_id: int, audience: str, exclude_pks: list[int]) -> list[int]:
    """The deliveries heading the first and the latest email this thread sent to this side
    (oldest first; one if they are the same, none before the first email), so the next
    email replies to Message-IDs we really sent (reply_addresses.message_id). An email that
    carried several messages shares one provider id and is headed by its lowest delivery id.
    One query, written as SQL: the ORM compiled its two subqueries anew for every email, a
    tenth of a worker's CPU (bench.deliveries --gil)."""
    placeholders = ", ".join(["%s"] * len(exclude_pks))
    kept = f"id NOT IN ({placeholders})" if exclude_pks else "TRUE"
    with connection.cursor() as cursor:
        cursor.execute(
            _EARLIER_EMAILS.format(
                delivery=connection.ops.quote_name(Delivery._meta.db_table),
                entry=connection.ops.quote_name(Entry._meta.db_table),
                kept=kept,
            ),
            [thread_id, Delivery.Channel.EMAIL.value, audience, *exclude_pks, *exclude_pks],
        )
        return [head for head, _ in cursor.fetchall()]


# The sent emails of one thread to one side; of the first and the latest (leaving out the
# ones being sent), every row sharing its provider id, grouped to its lowest id. Only table
# names and the excluded ids' placeholders are formatted in; every value is a parameter.
_EARLIER_EMAILS = """
    WITH sent AS (
        SELECT d.id, d.provider_id, d.sent_at
        FROM {delivery} d JOIN {entry} e ON e.id = d.entry_id
        WHERE e.thread_id = %s AND d.channel = %s AND d.audience = %s
          AND d.sent_at IS NOT NULL AND d.provider_id <> ''
    )
    SELECT MIN(id) AS head, MIN(sent_at) AS at FROM sent
    WHERE provider_id = (
        SELECT provider_id FROM sent WHERE {kept} ORDER BY sent_at, id LIMIT 1
    ) OR provider_id = (
        SELECT provider_id FROM sent WHERE {kept}
        ORDER BY sent_at DESC, id DESC LIMIT 1
    )
    GROUP BY provider_id
    ORDER BY at, head
"""
