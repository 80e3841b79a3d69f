"""Provider status: what Twilio and the email provider report after a send.

Callbacks arrive late, twice and out of order, so every write here moves a Delivery forward
only (`DeliveryQuerySet.move_forward`): a late "sent" never overwrites "delivered".
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from messaging import live
from notifications import transports
from notifications.actions import planning
from notifications.actions.preferences import set_sms_opt_out
from notifications.models import Delivery, statuses_below

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
}


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
    Error 21610 means the number replied STOP: opt the customer out, and email instead."""
    new = TWILIO_STATUSES.get(status)
    if new is None or not message_sid:
        return 0
    rows = Delivery.objects.filter(channel=Channel.SMS)
    if delivery_id is not None:
        rows = rows.filter(pk=delivery_id).filter(Q(provider_id="") | Q(provider_id=message_sid))
    else:
        rows = rows.filter(provider_id=message_sid)
    reason = f"Carrier reported {status}" + (f" (Twilio {error_code})" if error_code else "")
    changed = _move_forward_and_announce(
        rows, new, provider_id=message_sid, **_outcome(new, reason)
    )
    if changed and new == Status.FAILED and error_code == str(transports.TWILIO_UNSUBSCRIBED):
        for delivery in rows.filter(audience=Delivery.Audience.CUSTOMER).select_related(
            "entry__thread__customer"
        ):
            customer = delivery.entry.thread.customer
            set_sms_opt_out(customer=customer, opted_out=True)
            planning.plan_email_fallback(entry=delivery.entry, customer=customer)
    return changed


def record_email_event(*, message_id: str, event_type: str, reason: str = "") -> int:
    """Apply an email provider's tracking event (through anymail). An email sent as one
    batch updates every delivery it carried."""
    new = EMAIL_EVENTS.get(event_type)
    if new is None or not message_id:
        return 0
    why = f"Email {event_type}" + (f": {reason}" if reason else "")
    rows = Delivery.objects.filter(channel=Channel.EMAIL, provider_id=message_id)
    return _move_forward_and_announce(rows, new, **_outcome(new, why))


def _move_forward_and_announce(rows, status: str, **changes) -> int:
    """Move `rows` forward to `status`, and tell open staff chats which entries changed."""
    moving = list(
        rows.filter(status__in=statuses_below(status)).values_list("entry__thread_id", "entry__seq")
    )
    changed = rows.move_forward(status, **changes)
    if changed:
        live.broadcast_deliveries_changed_on_commit(moving)
    return changed
