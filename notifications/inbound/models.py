"""What came in: one row per text or email received, before and after it joins a thread."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from messaging.models import Entry
from portal.models import Customer


class InboundMessage(models.Model):
    """A text or email that came in, as received: the provider's id (so a replay is a
    no-op), who sent it, and what became of it. Matched to a customer, it becomes an entry in
    their thread; from a stranger, or refused, it stays here for staff (/staff/unmatched/),
    never dropped. Photos fetched or attached wait here as files until they join an entry."""

    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        EMAIL = "email", "Email"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received (media to fetch)"
        APPENDED = "appended", "In a thread"
        UNMATCHED = "unmatched", "Unmatched"
        ASSIGNED = "assigned", "Assigned by staff"
        REJECTED = "rejected", "Refused"
        DISMISSED = "dismissed", "Set aside by staff"
        # A bounce, an auto-reply, a read receipt: kept as a record, never a message.
        AUTOMATIC = "automatic", "Automatic mail"

    channel = models.CharField(max_length=10, choices=Channel.choices)
    # Twilio's MessageSid, or the email's Message-ID.
    provider_id = models.CharField(max_length=200)
    sender = models.CharField(max_length=320, help_text="Phone number (E.164) or address.")
    recipient = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    # Media to fetch ({"url", "content_type"}), then files stored ({"path", "name",
    # "content_type", "size", "staff_only"...}) until they join an entry.
    media = models.JSONField(default=list, blank=True)
    files = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    # Tries at fetching the media so far: past a few, the text goes without what never came.
    fetch_attempts = models.PositiveSmallIntegerField(default=0)
    # Why it was not appended (unknown sender, refused content...), for staff.
    reason = models.CharField(max_length=300, blank=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    entry = models.ForeignKey(
        Entry, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField()
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_id"], name="inbound_once_per_provider_id"
            ),
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="inbound_status")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} from {self.sender} ({self.get_status_display()})"
