"""Receivers for other apps' extension points: anymail's tracking and inbound signals. Each
only calls an action."""

from __future__ import annotations

from notifications.inbound import actions as inbound
from notifications.inbound.inbound_mail import (
    NO_VERDICT,
    Authentication,
    authentication,
    printable,
)
from notifications.inbound.inbound_mail import sender as inbound_mail_sender
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
        authentication=_authentication(event, esp_name),
    )


def _authentication(event, esp_name: str) -> Authentication:
    """The ESP's SPF/DKIM verdict on the sender, where it gives one: Postmark puts its own
    Received-SPF and SpamAssassin headers first in the payload's Headers (and the envelope
    sender in the Return-Path before them, which anymail takes out)."""
    esp_event = getattr(event, "esp_event", None)
    if esp_name.lower() != "postmark" or not isinstance(esp_event, dict):
        return NO_VERDICT
    listed = esp_event.get("Headers")
    headers = [
        (h.get("Name", ""), h.get("Value", ""))
        for h in (listed if isinstance(listed, list) else [])
        if isinstance(h, dict)
    ]
    message = event.message
    return authentication(
        headers=headers,
        envelope_sender=str(getattr(message, "envelope_sender", None) or ""),
        sender=inbound_mail_sender(message),
    )
