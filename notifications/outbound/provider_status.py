"""Provider status: what Twilio and the email provider report after a send.

Callbacks arrive late, twice and out of order, so every write here moves a Delivery forward
only (`DeliveryQuerySet.move_forward`, which holds the rank rule): a late "sent" never
overwrites "delivered".
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from messaging import live
from notifications.models import Delivery
from notifications.outbound import fallback, transports
from notifications.outbound.preferences import set_sms_opt_out

Status = Delivery.Status
Channel = Delivery.Channel

# Twilio message statuses we act on; the rest (accepted, queued, sending) say nothing new.
TWILIO_STATUSES = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "undelivered": Status.FAILED,
    "failed": Status.FAILED,
}

# anymail's normalized event types.
EMAIL_EVENTS = {
    "delivered": Status.DELIVERED,
    "opened": Status.DELIVERED,
    "clicked": Status.DELIVERED,
    "bounced": Status.FAILED,
    "rejected": Status.FAILED,
    "failed": Status.FAILED,
    # They marked it as spam, or unsubscribed at the provider: it may have arrived, but
    # the address is not one to write to any more (forward only: a delivered email stays so).
    "complained": Status.FAILED,
    "unsubscribed": Status.FAILED,
}
# Events after which the address is not written to again (its notifications go by SMS).
STOP_EMAILING = frozenset({"bounced", "rejected", "failed", "complained", "unsubscribed"})


def _outcome(new: str, reason: str) -> dict:
    now = timezone.now()
    if new == Status.DELIVERED:
        return {"delivered_at": now}
    if new == Status.FAILED:
        return {"failed_at": now, "last_error": reason}
    return {}


def record_sms_status(
    *,
    message_sid: str,
    status: str,
    error_code: str = "",
    delivery_id: int | None = None,
) -> int:
    """Apply a Twilio status callback. Matches by our delivery id (in the callback URL: the
    callback can beat our own record of the sid) and the sid. Returns how many rows changed.
    A customer's text that failed goes by email instead (fallback); error 21610 also means
    the number replied STOP: no texts until START."""
    new = TWILIO_STATUSES.get(status)
    if new is None or not message_sid:
        return 0
    rows = Delivery.objects.filter(channel=Channel.SMS)
    if delivery_id is not None:
        rows = rows.filter(pk=delivery_id).filter(Q(provider_id="") | Q(provider_id=message_sid))
    else:
        rows = rows.filter(provider_id=message_sid)
    reason = f"Carrier reported {status}" + (f" (Twilio {error_code})" if error_code else "")
    moved = _move_forward_and_announce(rows, new, provider_id=message_sid, **_outcome(new, reason))
    if new == Status.FAILED:
        for delivery in moved:
            if delivery.audience != Delivery.Audience.CUSTOMER:
                continue
            if error_code == str(transports.TWILIO_UNSUBSCRIBED):
                set_sms_opt_out(customer=delivery.entry.thread.customer, opted_out=True)
            fallback.fall_back(
                failed=delivery,
                reason=f"was {status}" + (f" (Twilio {error_code})" if error_code else ""),
            )
    return len(moved)


def record_email_event(*, message_id: str, event_type: str, reason: str = "") -> int:
    """Apply an email provider's tracking event (through anymail). An email sent as one
    batch updates every delivery it carried. A delivered email clears a bounce mark; a bounce
    sends the messages by SMS instead."""
    new = EMAIL_EVENTS.get(event_type)
    if new is None or not message_id:
        return 0
    why = f"Email {event_type}" + (f": {reason}" if reason else "")
    rows = Delivery.objects.filter(channel=Channel.EMAIL, provider_id=message_id)
    moved = _move_forward_and_announce(rows, new, **_outcome(new, why))
    customers = [d for d in moved if d.audience == Delivery.Audience.CUSTOMER]
    if new == Status.DELIVERED:
        fallback.clear_email_bounced(deliveries=customers)
    elif new == Status.FAILED and customers:
        email_failed(deliveries=customers, reason=event_type + (f" ({reason})" if reason else ""))
    elif event_type in STOP_EMAILING:
        # A complaint about an email that was delivered: no fallback, but no more email.
        delivered = list(
            rows.filter(audience=Delivery.Audience.CUSTOMER).select_related(
                "entry__thread__customer"
            )
        )
        fallback.mark_email_bounced(deliveries=delivered)
    return len(moved)


def fail_deliveries(*, deliveries: list[Delivery], reason: str) -> list[Delivery]:
    """Mark these deliveries failed (a bounce that came back as mail), forward only; returns
    the ones that moved."""
    rows = Delivery.objects.filter(pk__in=[d.pk for d in deliveries])
    return _move_forward_and_announce(rows, Status.FAILED, **_outcome(Status.FAILED, reason))


def email_failed(*, deliveries: list[Delivery], reason: str) -> None:
    """Customer emails that will never arrive (a bounce, however we heard of it): the address
    is marked bouncing, and each message goes by SMS instead, with a note for staff."""
    fallback.mark_email_bounced(deliveries=deliveries)
    for delivery in deliveries:
        fallback.fall_back(failed=delivery, reason=reason)


def _move_forward_and_announce(rows, status: str, **changes) -> list[Delivery]:
    """Move `rows` forward to `status`, tell open staff chats, and return the rows that
    moved."""
    moving = rows.move_forward(status, **changes)
    live.broadcast_deliveries_changed_on_commit([(d.entry.thread_id, d.entry.seq) for d in moving])
    return moving
