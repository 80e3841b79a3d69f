"""Notifications: what each customer wants, their devices, and the Delivery outbox.

A `Delivery` is work that must not be lost: one row per (entry, channel, audience), written
in the same transaction as its entry (`notifications.actions.plan_deliveries`), claimed by a
conditional UPDATE before anything is sent, and moved only forward through its statuses.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Value, When

from messaging.models import Entry
from portal.models import Customer, validate_time_zone

DEFAULT_QUIET_START = dt.time(21, 0)
DEFAULT_QUIET_END = dt.time(8, 0)


class NotificationPreferences(models.Model):
    """A customer's choices. Customers without a row get `for_customer()`'s defaults."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    sms_enabled = models.BooleanField("Text messages", default=True)
    email_enabled = models.BooleanField("Email", default=True)
    push_enabled = models.BooleanField("Push notifications", default=True)
    quiet_hours_enabled = models.BooleanField("Quiet hours", default=True)
    quiet_start = models.TimeField(default=DEFAULT_QUIET_START)
    quiet_end = models.TimeField(default=DEFAULT_QUIET_END)
    # Quiet hours are read on this clock. Kept equal to Customer.time_zone by the one action
    # that changes it, so the portal's times and the quiet hours agree.
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    # Set when the carrier tells us the number replied STOP (Twilio error 21610) or an
    # inbound STOP arrives; no SMS goes to the customer until it is cleared by START.
    sms_opted_out_at = models.DateTimeField(null=True, blank=True)
    # Set when an email to the customer's address bounced; their notifications go by SMS
    # until an email is delivered again or they save their settings.
    email_bounced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "notification preferences"

    def __str__(self) -> str:
        return f"Notification preferences of {self.customer}"

    @classmethod
    def for_customer(cls, customer: Customer) -> NotificationPreferences:
        """The stored row, or an unsaved one holding the defaults (reads never write)."""
        try:
            return cls.objects.get(customer=customer)
        except cls.DoesNotExist:
            return cls(customer=customer, time_zone=customer.time_zone)

    @property
    def sms_opted_out(self) -> bool:
        return self.sms_opted_out_at is not None

    @property
    def email_bounced(self) -> bool:
        return self.email_bounced_at is not None

    def reachable_by_sms(self, customer: Customer) -> bool:
        return bool(customer.phone) and not self.sms_opted_out

    def reachable_by_email(self, customer: Customer) -> bool:
        return bool(customer.email) and not self.email_bounced


class PushSubscription(models.Model):
    """One browser or installed app that may receive Web Push for a customer."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    # The push service's URL for this device: a capability, so unique across customers (a
    # shared device belongs to whoever subscribed last).
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Push subscription {self.pk} of {self.customer}"

    def as_subscription_info(self) -> dict:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class DeliveryQuerySet(models.QuerySet):
    """The outbox's only status writes: a claim, writes under a claim, and forward moves."""

    def claim(self, *, token: uuid.UUID, now: dt.datetime, due_only: bool = True) -> int:
        """Take the queued rows of this queryset (only those due, unless told otherwise) for
        one sender. The conditional UPDATE is the lock: of any number of workers claiming the
        same row, exactly one sees a row count of 1. Returns how many rows were taken."""
        rows = self.filter(status=Delivery.Status.QUEUED)
        if due_only:
            rows = rows.filter(send_after__lte=now)
        return rows.update(
            status=Delivery.Status.SENDING,
            claim_token=token,
            claimed_at=now,
            attempts=F("attempts") + 1,
        )

    def claimed_by(self, token: uuid.UUID) -> DeliveryQuerySet:
        """The rows a claim took; results are recorded only through this, so a worker whose
        lease the sweeper took over cannot overwrite the newer attempt."""
        return self.filter(claim_token=token)

    def record_sent(self, *, provider_id: str, sent_at: dt.datetime, note: str = "") -> int:
        # A status callback may already have moved the row past "sent" (Twilio can call back
        # before this UPDATE lands): the Case keeps that status, and the id is recorded anyway.
        # QUEUED counts too: if the sweeper took the row back after a long stall and no one
        # has claimed it again, this late success stands and the re-drive finds nothing.
        sent = Delivery.Status.SENT
        return self.update(
            status=Case(
                When(
                    status__in=[Delivery.Status.SENDING, Delivery.Status.QUEUED], then=Value(sent)
                ),
                default=F("status"),
            ),
            provider_id=provider_id[:200],
            sent_at=sent_at,
            last_error=note,
        )

    def move_forward(self, status: str, **changes) -> int:
        """Set `status` (and `changes`) on the rows whose status ranks below it: providers
        report out of order, and a late "sent" must never overwrite "delivered"."""
        return self.filter(status__in=statuses_below(status)).update(status=status, **changes)


class Delivery(models.Model):
    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        EMAIL = "email", "Email"
        PUSH = "push", "Push"

    class Audience(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        BUSINESS = "business", "Business"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        HELD = "held", "Held"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Not sent"

    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    audience = models.CharField(max_length=10, choices=Audience.choices)
    # Phone number (E.164) or email address; for push, a description of the devices.
    recipient = models.CharField(max_length=320)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    # Why it is held (quiet hours) or waiting (email delay); shown to staff.
    hold_reason = models.CharField(max_length=20, blank=True)
    provider_id = models.CharField(max_length=200, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # When it may go. Held deliveries wait for it; a periodic task releases them.
    send_after = models.DateTimeField()
    # When the task last queued for it was due to run; the sweeper re-queues a due delivery
    # whose task is long overdue (lost in a Redis outage, or never published).
    task_eta = models.DateTimeField(null=True, blank=True)
    # Set by the conditional UPDATE that claims it; the result is recorded only under the
    # same token, so a worker whose lease was taken over cannot overwrite the newer attempt.
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # The delivery this one replaces, which failed for good on the other channel (an email
    # that bounced, an SMS the carrier refused): sent even if that channel is not one the
    # customer chose, since it is the way left to reach them.
    fallback_for = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="fallback"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["entry_id", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["entry", "channel", "audience"], name="delivery_one_per_channel"
            ),
        ]
        indexes = [
            # The sweeper's scans: due held/queued rows and stale sending rows.
            models.Index(fields=["status", "send_after"], name="delivery_status_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.recipient} ({self.status})"


S = Delivery.Status

# Status only moves forward. Providers report out of order (a late "sent" after
# "delivered"), so every status write is conditional on the current rank being lower.
RANK = {
    S.QUEUED: 0,
    S.HELD: 0,
    S.SENDING: 1,
    S.SENT: 2,
    S.DELIVERED: 3,
    S.FAILED: 3,
    S.SUPPRESSED: 3,
}


def statuses_below(status: str) -> list[str]:
    """Statuses a row may move to `status` from."""
    return [s for s, rank in RANK.items() if rank < RANK[status]]


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
