"""What a transcript (messaging/transcripts.py) says of each entry's notifications: every
Delivery with its channel, recipient, status and times, read for a chunk of entries in one
query.

Delivery records what the providers report: Twilio's status callbacks (sent, delivered,
undelivered, failed, with the carrier's error code in the reason) and the email provider's
tracking events (delivered; opened also counts as delivered; bounced, rejected and the like
fail the row with the reason). There is no separate "opened" time.

The customer's copy lists only what was sent to the customer, with the address masked (a
transcript is a document people pass on) and without the internal reason; the staff copy
lists every row whole, the notifications to the business included."""

from __future__ import annotations

from messaging.models import Entry
from messaging.transcripts import iso
from notifications.models import Delivery
from notifications.queries import CHANNEL_ORDER


def mask(recipient: str) -> str:
    """ "s***@example.com", "***0123": enough to recognise one's own, not to copy it."""
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    if recipient.startswith("+") or recipient.isdigit():
        return f"***{recipient[-4:]}"
    return recipient  # push: a description of the devices, no address


def entry_receipts(entries: list[Entry], *, staff: bool, zone: str) -> dict[int, list[dict]]:
    rows = Delivery.objects.filter(entry_id__in=[e.pk for e in entries])
    if not staff:
        rows = rows.filter(audience=Delivery.Audience.CUSTOMER)
    receipts: dict[int, list[dict]] = {}
    # Plain values: model instances of a wide row cost more than the rest of a receipt.
    fields = ("entry_id", "channel", "audience", "recipient", "status", "created_at", "sent_at",
              "delivered_at", "failed_at", "last_error", "provider_id")  # fmt: skip
    ordered = sorted(
        rows.values(*fields),
        key=lambda d: (d["entry_id"], CHANNEL_ORDER.get(d["channel"], 9), d["audience"]),
    )
    for delivery in ordered:
        receipt = {
            "channel": delivery["channel"],
            "recipient": delivery["recipient"] if staff else mask(delivery["recipient"]),
            "status": delivery["status"],
            "queued_at": iso(delivery["created_at"], zone),
            "sent_at": iso(delivery["sent_at"], zone),
            "delivered_at": iso(delivery["delivered_at"], zone),
            "failed_at": iso(delivery["failed_at"], zone),
        }
        if staff:
            receipt["to"] = delivery["audience"]
            receipt["error"] = delivery["last_error"] or None
            receipt["provider_id"] = delivery["provider_id"] or None
        receipts.setdefault(delivery["entry_id"], []).append(receipt)
    return receipts
