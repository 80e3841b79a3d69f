"""The outbound webhook records. `crm_events.models` imports them, so Django sees them as the
crm_events app's models (migration 0003).

A `WebhookDelivery` is the outbox row: one per event and endpoint, written in the same
transaction as the change it tells of. Its status has one writer, `WebhookDeliveryQuerySet`
(tests/crm_events/test_outbound_owners.py keeps it so); an endpoint's `enabled` has one too,
`WebhookEndpointQuerySet`.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import models
from django.db.models import F, Q

from portal.models import Customer, Project


class EventType(models.TextChoices):
    MESSAGE_RECEIVED = "message.received", "message.received: a customer's message, any channel"
    ESTIMATE_APPROVED = "estimate.approved", "estimate.approved"
    ESTIMATE_DECLINED = "estimate.declined", "estimate.declined"
    APPOINTMENT_CONFIRMED = "appointment.confirmed", "appointment.confirmed"
    APPOINTMENT_RESCHEDULE_REQUESTED = (
        "appointment.reschedule_requested",
        "appointment.reschedule_requested",
    )
    CONVERSATION_READ = "conversation.read", "conversation.read: the customer read up to seq N"
    CUSTOMER_UPDATED = "customer.updated", "customer.updated"
    REQUEST_CREATED = "request.created", "request.created"


class WebhookEndpointQuerySet(models.QuerySet):
    """The only writer of an endpoint's `enabled` (and of the note that says why it is off)."""

    def disable(self, *, reason: str, now: dt.datetime) -> int:
        return self.filter(enabled=True).update(
            enabled=False, disabled_reason=reason[:300], disabled_at=now
        )

    def enable(self) -> int:
        return self.filter(enabled=False).update(
            enabled=True, disabled_reason="", disabled_at=None, failing_since=None
        )


class WebhookEndpoint(models.Model):
    """Where events go. Entered in the admin (a public https URL), or the one named by
    CRM_OUTBOUND_URL and CRM_OUTBOUND_SECRET (`from_environment`: its URL and secrets are
    read from the settings at each attempt, never stored)."""

    url = models.URLField(
        "URL", max_length=500, blank=True, help_text="A public https address of your CRM."
    )
    description = models.CharField(max_length=120, blank=True)
    secret = models.CharField(
        max_length=200, blank=True, help_text="whsec_… (Standard Webhooks); made for you if blank."
    )
    previous_secret = models.CharField(
        max_length=200,
        blank=True,
        help_text="While rotating: every event is signed with both secrets until this is cleared.",
    )
    event_types = models.JSONField(
        default=list, blank=True, help_text="The types sent; none ticked sends every type."
    )
    enabled = models.BooleanField(default=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Since when every attempt has failed (None after a success): a day of it disables it.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    from_environment = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        verbose_name = "CRM webhook endpoint"
        constraints = [
            models.UniqueConstraint(
                fields=["from_environment"],
                condition=Q(from_environment=True),
                name="webhook_one_environment_endpoint",
            )
        ]

    def __str__(self) -> str:
        return "CRM_OUTBOUND_URL" if self.from_environment else self.url

    def hears(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class OutboundEvent(models.Model):
    """One event, as sent: `body` is the exact JSON every attempt signs and POSTs, so a retry
    or a resend is byte for byte the first (and carries the same `webhook-id`, `event_id`)."""

    event_id = models.CharField(max_length=40, unique=True)
    type = models.CharField(max_length=40, choices=EventType.choices)
    # What caused it (`estimate:7:approved`, `entry:812`): the same change is one event.
    key = models.CharField(max_length=200, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Gap-free per customer, in the order the changes committed: the CRM orders by it.
    sequence = models.PositiveIntegerField()
    occurred_at = models.DateTimeField()
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = "CRM outbound event"
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "sequence"], name="outbound_event_customer_sequence"
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"

    @staticmethod
    def new_id() -> str:
        return f"evt_{uuid.uuid4().hex}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


# The statuses each transition leaves from.
LEAVES = {
    "claim": {DeliveryStatus.PENDING},
    "record_delivered": {DeliveryStatus.SENDING},
    "retry": {DeliveryStatus.SENDING},
    "fail": {DeliveryStatus.SENDING},
    "redrive_stalled": {DeliveryStatus.SENDING},
    "resend": {DeliveryStatus.DELIVERED, DeliveryStatus.FAILED},
}


class WebhookDeliveryQuerySet(models.QuerySet):
    """Every status transition of a WebhookDelivery, and nowhere else. Each is one conditional
    UPDATE from the statuses it may leave, so workers, sweeps and a staff "resend" racing on
    one row never overwrite each other."""

    def _leaving(self, transition: str) -> WebhookDeliveryQuerySet:
        return self.filter(status__in=LEAVES[transition])

    def claim(self, *, token: uuid.UUID, now: dt.datetime) -> int:
        """Take the due pending rows (of enabled endpoints) for one sender; exactly one of any
        number of racing workers sees a count of 1."""
        return (
            self._leaving("claim")
            .filter(next_attempt_at__lte=now, endpoint__enabled=True)
            .update(
                status=DeliveryStatus.SENDING,
                claim_token=token,
                claimed_at=now,
                attempts=F("attempts") + 1,
            )
        )

    def claimed_by(self, token: uuid.UUID) -> WebhookDeliveryQuerySet:
        return self.filter(claim_token=token)

    def record_delivered(self, *, status_code: int, now: dt.datetime) -> int:
        return self._leaving("record_delivered").update(
            status=DeliveryStatus.DELIVERED,
            delivered_at=now,
            last_status_code=status_code,
            last_error="",
        )

    def retry(self, *, next_attempt_at: dt.datetime, status_code: int | None, note: str) -> int:
        return self._leaving("retry").update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=next_attempt_at,
            last_status_code=status_code,
            last_error=note[:500],
        )

    def fail(self, *, status_code: int | None, note: str) -> int:
        return self._leaving("fail").update(
            status=DeliveryStatus.FAILED, last_status_code=status_code, last_error=note[:500]
        )

    def redrive_stalled(self, *, now: dt.datetime) -> int:
        """Rows whose worker died between claim and result go back to the queue."""
        return self._leaving("redrive_stalled").update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            last_error="The worker stopped before recording a result; sending again",
        )

    def resend(self, *, now: dt.datetime, retry_for: dt.timedelta) -> int:
        """Staff asked for it again (the CRM lost it, or it failed for good)."""
        return self._leaving("resend").update(
            status=DeliveryStatus.PENDING, next_attempt_at=now, give_up_at=now + retry_for
        )

    def wait_for_endpoint(self, *, now: dt.datetime, retry_for: dt.timedelta) -> int:
        """An endpoint comes back on: what waited for it is due now, with days of retries
        again (not a change of status: they are and stay pending)."""
        return self.filter(status=DeliveryStatus.PENDING).update(
            next_attempt_at=now, give_up_at=now + retry_for
        )


class WebhookDelivery(models.Model):
    """The outbox row: one event to one endpoint, until the endpoint answers 2xx or the event
    is days old. Attempts are logged in `WebhookAttempt`."""

    event = models.ForeignKey(OutboundEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    give_up_at = models.DateTimeField()
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        verbose_name = "CRM webhook delivery"
        verbose_name_plural = "CRM webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class WebhookAttempt(models.Model):
    """One POST: the log staff read in the admin (request, answer, time)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="log")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    url = models.CharField(max_length=500)
    request_headers = models.JSONField(default=dict)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = "CRM webhook attempt"

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"
