"""The contractor's CRM records: appointments, invoices, estimates, contracts and calls.

Records are written only by `crm_events.actions` (the API, the admin, the portal buttons and
the automations all call it); each change of a record tells the customer's thread through
`messaging.actions`, with an idempotency key made from the record and the change.
Money is `Decimal` throughout: two places for amounts, three for quantities.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator, URLValidator
from django.db import models
from django.db.models import Q

# Announcements' and the outbound webhooks' records live beside their code; imported so
# Django finds them.
from crm_events.announcements.models import Announcement, AnnouncementRecipient  # noqa: F401
from crm_events.outbound.models import (  # noqa: F401
    OutboundEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from crm_events.reply_templates import VARIABLES, check_body
from portal.models import Business, Customer, Project

CENTS = Decimal("0.01")
MONEY = {"max_digits": 12, "decimal_places": 2}
QUANTITY = {"max_digits": 10, "decimal_places": 3}


# What an invoice or estimate number may be: it is a segment of the document's address
# (/invoices/<number>/) and part of its PDF's file name, so no "/", no spaces or control
# characters, and no "." or ".." alone. The event API's schema, the admin's form and the URL
# converter all use this one pattern.
DOCUMENT_NUMBER = r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}"
document_number = RegexValidator(
    rf"\A{DOCUMENT_NUMBER}\Z",
    "A number is 1 to 40 letters, digits, “-”, “_” or “.”, starting with a letter or digit.",
    code="bad_number",
)


# Payment pages and receipts the customer is sent to: https, never anything else.
https_only = URLValidator(schemes=["https"])


def money(value: Decimal) -> Decimal:
    """Round to cents, half up, as invoices are."""
    return Decimal(value).quantize(CENTS, rounding=ROUND_HALF_UP)


class CrmSettings(models.Model):
    """Per business: how money is shown, and which automations run."""

    business = models.OneToOneField(Business, on_delete=models.CASCADE, related_name="crm_settings")
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217, such as USD.")
    locale = models.CharField(
        max_length=20, default="en_US", help_text="How amounts are written, such as en_US."
    )
    reminders_enabled = models.BooleanField(
        "Appointment reminders", default=True, help_text="A text the day before each appointment."
    )
    reminder_time = models.TimeField(
        default=dt.time(9, 0),
        help_text="When the day-before reminder goes, in the business's zone.",
    )
    confirm_by_reply_enabled = models.BooleanField(
        "CONFIRM by reply",
        default=True,
        help_text="A reply of CONFIRM (SMS or portal) confirms the next appointment.",
    )
    follow_ups_enabled = models.BooleanField(
        "Follow-ups", default=True, help_text="A message some days after a project is completed."
    )
    follow_up_days = models.PositiveSmallIntegerField(default=3)
    follow_up_message = models.CharField(
        max_length=300,
        default="Hi {first_name}, how did the {project} come out? Hope you love it!",
        help_text="{first_name} and {project} are filled in.",
    )

    class Meta:
        verbose_name = "CRM settings"
        verbose_name_plural = "CRM settings"

    def __str__(self) -> str:
        return f"CRM settings of {self.business}"


class CustomerRecord(models.Model):
    """What every record has: whose it is, what project it is about, the CRM's own id."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    external_id = models.CharField(
        "CRM id", max_length=100, blank=True, help_text="The record's id in the contractor's CRM."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Appointment(CustomerRecord):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CONFIRMED = "confirmed", "Confirmed"
        RESCHEDULED = "rescheduled", "Rescheduled"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"

    title = models.CharField(max_length=160)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    crew_note = models.TextField(blank=True, help_text="Shown to the customer.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The start time the day-before reminder was sent for (a rescheduled visit gets another).
    reminded_for = models.DateTimeField(null=True, blank=True, editable=False)
    # The .ics SEQUENCE (RFC 5545): bumped by transition_appointment, its only writer, each
    # time the visit moves or is cancelled, so calendars replace their copy.
    calendar_sequence = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="appointment_ends_after_start"
            ),
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="appointment_crm_id"
            ),
        ]
        indexes = [models.Index(fields=["customer", "starts_at"], name="appointment_customer")]

    def __str__(self) -> str:
        return f"{self.title} ({self.starts_at:%Y-%m-%d %H:%M})"

    @property
    def awaiting_confirmation(self) -> bool:
        return self.status in (self.Status.SCHEDULED, self.Status.RESCHEDULED)

    @property
    def is_open(self) -> bool:
        return self.status in (
            self.Status.SCHEDULED,
            self.Status.RESCHEDULED,
            self.Status.CONFIRMED,
        )


class Document(CustomerRecord):
    """An invoice or an estimate: numbered, with lines and a total."""

    number = models.CharField(max_length=40, validators=[document_number])
    currency = models.CharField(max_length=3, default="USD")
    total = models.DecimalField(**MONEY, validators=[MinValueValidator(0)], default=Decimal(0))
    issued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Invoice(Document):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        PARTIALLY_PAID = "partially_paid", "Partially paid"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    status = models.CharField(max_length=14, choices=Status.choices, default=Status.DRAFT)
    due_on = models.DateField(null=True, blank=True)
    # Where the customer pays (the CRM's payment processor); https only.
    payment_url = models.URLField(max_length=500, blank=True, validators=[https_only])
    # The sum of its payments, kept by crm_events.actions.invoices.record_payment.
    amount_paid = models.DecimalField(**MONEY, default=Decimal(0), editable=False)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="invoice_number_unique"),
            models.CheckConstraint(condition=Q(total__gte=0), name="invoice_total_not_negative"),
        ]
        indexes = [models.Index(fields=["customer", "number"], name="invoice_customer_number")]

    def __str__(self) -> str:
        return f"Invoice #{self.number}"

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.SENT, self.Status.PARTIALLY_PAID)

    @property
    def balance_due(self) -> Decimal:
        return max(self.total - self.amount_paid, Decimal(0))

    @property
    def payment_host(self) -> str:
        return urlsplit(self.payment_url).hostname or ""


class Estimate(Document):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    valid_until = models.DateField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    terms = models.TextField(blank=True, help_text="The terms the customer agrees to.")
    # Each `estimate.sent` with other content is a new version (its content kept in
    # EstimateVersion); a decision names the version it was made on.
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["-issued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="estimate_number_unique"),
            models.CheckConstraint(condition=Q(total__gte=0), name="estimate_total_not_negative"),
        ]
        indexes = [models.Index(fields=["customer", "number"], name="estimate_customer_number")]

    def __str__(self) -> str:
        return f"Estimate #{self.number}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.SENT


class Line(models.Model):
    position = models.PositiveSmallIntegerField(default=0)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(
        **QUANTITY, default=Decimal(1), validators=[MinValueValidator(Decimal("0.001"))]
    )
    unit_price = models.DecimalField(**MONEY, validators=[MinValueValidator(0)])

    class Meta:
        abstract = True
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.description

    @property
    def amount(self) -> Decimal:
        return money(self.quantity * self.unit_price)


class InvoiceLine(Line):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")


class EstimateLine(Line):
    estimate = models.ForeignKey(Estimate, on_delete=models.CASCADE, related_name="lines")
    # Not in the total; the customer may choose it when approving.
    optional = models.BooleanField(default=False)


class EstimateVersion(models.Model):
    """The content of one version of an estimate as the CRM sent it (number, lines, terms,
    totals): a decided version stays readable after the CRM revises the estimate."""

    estimate = models.ForeignKey(Estimate, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    content = models.JSONField()
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["estimate", "version"]
        constraints = [
            models.UniqueConstraint(fields=["estimate", "version"], name="estimate_version_unique")
        ]

    def __str__(self) -> str:
        return f"Estimate #{self.estimate.number} v{self.version}"


class EstimateDecision(models.Model):
    """The customer's approval (a typed signature) or decline of one version of an estimate,
    as they made it in the portal. Written only by crm_events.actions.estimates."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"

    estimate = models.ForeignKey(Estimate, on_delete=models.PROTECT, related_name="decisions")
    version = models.PositiveIntegerField()
    decision = models.CharField(max_length=8, choices=Decision.choices)
    signer_name = models.CharField(max_length=200)
    decided_at = models.DateTimeField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    # Positions of the optional lines chosen, and the total with them.
    chosen_options = models.JSONField(default=list)
    total = models.DecimalField(**MONEY)
    # The canonical JSON of what was shown, and its SHA-256 (docs/crm.md says what is in it).
    document = models.TextField()
    document_sha256 = models.CharField(max_length=64)
    reason = models.TextField(blank=True, help_text="Why it was declined, if the customer said.")

    class Meta:
        ordering = ["estimate", "version"]
        constraints = [
            # One decision per version: deciding twice is refused, not recorded twice.
            models.UniqueConstraint(fields=["estimate", "version"], name="estimate_decision_once")
        ]

    def __str__(self) -> str:
        return f"Estimate #{self.estimate.number} v{self.version} {self.decision}"


class Payment(models.Model):
    """One payment of an invoice, as the CRM reported it (`invoice.paid`), once per CRM
    payment id. Written only by crm_events.actions.invoices.record_payment."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    external_id = models.CharField("CRM payment id", max_length=200, unique=True)
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    method = models.CharField(max_length=40, blank=True)
    receipt_url = models.URLField(max_length=500, blank=True, validators=[https_only])
    paid_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invoice", "paid_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive")
        ]

    def __str__(self) -> str:
        return f"Payment {self.external_id} of {self.invoice}"


class Contract(CustomerRecord):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        SIGNED = "signed", "Signed"
        VOID = "void", "Void"

    number = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["number"], name="contract_number_unique")]

    def __str__(self) -> str:
        return f"Contract #{self.number}"


class Call(CustomerRecord):
    """A phone call with the customer. Its marker in the thread is written by
    messaging.actions.log_call; the transcript is for staff only."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    started_at = models.DateTimeField()
    duration_seconds = models.PositiveIntegerField()
    direction = models.CharField(
        max_length=8, choices=Direction.choices, default=Direction.OUTBOUND
    )
    transcript = models.TextField(blank=True, help_text="Staff only; never shown to customers.")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    entry = models.OneToOneField(
        "messaging.Entry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="call_crm_id"
            )
        ]

    def __str__(self) -> str:
        return f"Call with {self.customer} at {self.started_at:%Y-%m-%d %H:%M}"


class ProjectFollowUp(models.Model):
    """When a completed project was first seen completed, and when its follow-up went."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="+")
    completed_seen_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Follow-up for {self.project}"


class ApiEvent(models.Model):
    """One CRM event delivery, by its `webhook-id`: the idempotency record. Only accepted
    events are kept (a refused one wrote nothing, so the CRM may fix and resend it); a replay
    of an accepted id gets the stored status and body back, byte for byte."""

    webhook_id = models.CharField(max_length=200, unique=True)
    body_sha256 = models.CharField(max_length=64)
    type = models.CharField(max_length=40)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "CRM API event"

    def __str__(self) -> str:
        return f"{self.type} {self.webhook_id}"


class WorkRequest(models.Model):
    """The customer asks for work (/requests/new/): what, where, when would suit, with
    photos (on its card in the thread, `entry`). Written by `crm_events.actions.requests`;
    staff turn it into a project in the admin."""

    class PartOfDay(models.TextChoices):
        MORNING = "morning", "Morning (8am–12pm)"
        AFTERNOON = "afternoon", "Afternoon (12–5pm)"
        EVENING = "evening", "Evening (5–8pm)"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    description = models.TextField()
    address = models.CharField(max_length=300)
    # [{"date": "2026-12-10", "part": "morning"}, ...]: one or two, in the customer's zone.
    windows = models.JSONField(default=list)
    entry = models.OneToOneField(
        "messaging.Entry", on_delete=models.PROTECT, related_name="+", editable=False
    )
    # The form's token: a double submit is one request.
    key = models.CharField(max_length=64, editable=False)
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "key"], name="work_request_key_once")
        ]

    def __str__(self) -> str:
        return f"Request #{self.pk} from {self.customer}: {self.description[:60]}"


class CalendarFeed(models.Model):
    """The version of a customer's private calendar feed link (/calendar/<token>.ics). The
    token is signed (customer and version); "Reset link" bumps the version, so every link
    made before stops working. No row: version 0."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField(default=0)
    reset_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Calendar feed of {self.customer} (v{self.version})"


class SavedReply(models.Model):
    """A text staff insert into a reply by typing "/" and its name, filled in with the
    customer's values (crm_events.reply_templates). Managed in the admin; a body with an
    unknown variable or a stray brace is refused there, when saved."""

    name = models.CharField(
        max_length=60,
        unique=True,
        help_text="What staff type after “/” to find it, e.g. “Deposit”.",
    )
    body = models.TextField(
        max_length=1600,
        validators=[check_body],
        help_text="Variables: "
        + ", ".join(f"{{{name}}} ({what})" for name, (what, _) in VARIABLES.items())
        + ".",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "saved replies"

    def __str__(self) -> str:
        return self.name
