"""Receivers for other apps' extension points: anymail's tracking and inbound signals. Each
only calls an action."""

from __future__ import annotations

from notifications.inbound import actions as inbound
from notifications.inbound.inbound_mail import printable
from notifications.outbound import provider_status


def email_tracking_event(sender, event, esp_name: str, **kwargs) -> None:
    """An ESP said what became of an email we sent (delivered, bounced, rejected...)."""
    reason = event.description or event.mta_response or event.reject_reason or ""
    # printable: what the ESP says may carry NUL, which PostgreSQL's text refuses (the
    # message's own headers are cleaned where they are read, in inbound_mail)
    provider_status.record_email_event(
        message_id=printable(str(event.message_id or "")),
        event_type=event.event_type,
        reason=printable(str(reason))[:500],
    )


def email_inbound_event(sender, event, esp_name: str, **kwargs) -> None:
    """An email came in through the ESP's inbound webhook."""
    message = event.message
    inbound.receive_email(
        message=message,
        esp_event_id=printable(str(event.event_id or "")),
        # The address the ESP delivered it to (Postmark's OriginalRecipient), when it says.
        envelope_recipient=printable(str(getattr(message, "envelope_recipient", None) or "")),
    )
