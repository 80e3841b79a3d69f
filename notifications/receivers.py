"""Receivers for other apps' extension points (anymail's tracking signal)."""

from __future__ import annotations

from notifications.actions import provider_status


def email_tracking_event(sender, event, esp_name: str, **kwargs) -> None:
    """An ESP said what became of an email we sent (delivered, bounced, rejected...)."""
    reason = event.description or event.mta_response or event.reject_reason or ""
    provider_status.record_email_event(
        message_id=event.message_id or "", event_type=event.event_type, reason=str(reason)[:500]
    )
