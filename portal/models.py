from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from portal.phones import PhoneNumberField, format_phone


def validate_open_days(value: str) -> None:
    if not value or not set(value) <= set("1234567") or len(set(value)) != len(value):
        raise ValidationError("Open days are ISO weekday digits 1–7, each once, such as 12345.")


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError("“%(tz)s” is not a time zone.", params={"tz": value})


class Business(models.Model):
    """The contractor. One per deployment today; every customer belongs to one."""

    name = models.CharField(max_length=120)
    initials = models.CharField(max_length=3)
    logo = models.FileField(upload_to="logos/", blank=True)
    phone = PhoneNumberField(blank=True, help_text="Shown to customers in the portal.")
    email = models.EmailField()
    address = models.TextField(
        blank=True, help_text="Printed on invoices and estimates (their pages and PDFs)."
    )
    sms_number = PhoneNumberField(
        blank=True, help_text="The number that can receive SMS for the business."
    )
    time_zone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_time_zone]
    )
    # Business hours, on the business's clock: Insights counts a response's business-hours
    # time only inside them (docs/insights.md).
    opens_at = models.TimeField(default=dt.time(8, 0))
    closes_at = models.TimeField(default=dt.time(17, 0))
    open_days = models.CharField(
        max_length=7,
        default="12345",
        validators=[validate_open_days],
        help_text="ISO weekdays the business is open: 1 is Monday, 7 is Sunday (12345 is Mon–Fri).",
    )

    class Meta:
        verbose_name_plural = "businesses"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(opens_at__lt=models.F("closes_at")),
                name="business_opens_before_it_closes",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def open_weekdays(self) -> list[int]:
        return sorted(int(day) for day in self.open_days)

    @property
    def phone_display(self) -> str:
        return format_phone(self.phone)

    @property
    def logo_url(self) -> str:
        """Where pages load the logo from: a view that reads it through the storage API
        (MEDIA_URL is never served). A new upload gets a new stored name, so a new URL, and
        the old one may be cached."""
        if not self.logo:
            return ""
        version = hashlib.sha256(self.logo.name.encode()).hexdigest()[:12]
        return f"{reverse('business_logo', args=[self.pk])}?v={version}"


class CustomerTag(models.Model):
    """A label staff put on customers (edited in the admin), to choose who an announcement
    goes to ("Lakeside", "Gutter plan")."""

    name = models.CharField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    business = models.ForeignKey(Business, on_delete=models.PROTECT, related_name="customers")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="customer"
    )
    name = models.CharField(max_length=120)
    email = models.EmailField(blank=True)
    phone = PhoneNumberField(blank=True)
    address = models.CharField(max_length=300, blank=True, help_text="Where the work is done.")
    time_zone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_time_zone]
    )
    # The staff member who owns the conversation; written only by portal.actions.assign_customer.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_customers",
        limit_choices_to={"is_staff": True, "is_active": True},
    )
    tags = models.ManyToManyField(CustomerTag, blank=True, related_name="customers")
    # The customer's id in the contractor's CRM, as its events name it (`customer.crm_id`);
    # outbound events carry it back. Written only by portal.actions.link_crm_id.
    crm_id = models.CharField(
        "CRM id", max_length=100, blank=True, help_text="The customer's id in the contractor's CRM."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["crm_id"], condition=~models.Q(crm_id=""), name="customer_crm_id_unique"
            ),
            # Inbound SMS is matched by number and login by email: neither may be ambiguous.
            models.UniqueConstraint(
                fields=["phone"], condition=~models.Q(phone=""), name="customer_phone_unique"
            ),
            models.UniqueConstraint(
                fields=["email"], condition=~models.Q(email=""), name="customer_email_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name else ""

    @property
    def initials(self) -> str:
        parts = self.name.split()
        return "".join(p[0] for p in parts[:2]).upper() or "?"

    @property
    def phone_display(self) -> str:
        return format_phone(self.phone)


class Project(models.Model):
    class Status(models.TextChoices):
        PLANNING = "planning", "Planning"
        ACTIVE = "active", "Active"
        ON_HOLD = "on_hold", "On hold"
        COMPLETED = "completed", "Completed"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="projects")
    code = models.CharField(max_length=20, unique=True, help_text="Such as PRJ-1042.")
    title = models.CharField(max_length=160)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    plan_type = models.CharField(max_length=60, blank=True, help_text="Such as Premium Plan.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} · {self.title}"


class SignInCode(models.Model):
    """A six-digit code sent to a phone (SMS) or an email address: to sign in, or to prove
    that a new phone or email is the customer's before it replaces the old one.

    Only an HMAC of the code is kept (portal/codes.py). Each row's life: issued, then spent
    by the first right guess (`used_at`), or dead at `expires_at` or at the fifth wrong try.
    A new code for the same address and purpose ends the previous one."""

    class Purpose(models.TextChoices):
        SIGN_IN = "sign_in", "Sign in"
        VERIFY = "verify", "Confirm a new phone or email"

    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    # E.164 for a phone, lower-cased for an email: the form the code was sent to.
    address = models.CharField(max_length=254)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    failures = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["address", "purpose", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} code for {self.address}"


class SignedInDevice(models.Model):
    """A browser a customer signed in on: listed at /account/, where it can be signed out.
    `session_key` follows the session as its key rotates (portal/devices.py)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="devices")
    session_key = models.CharField(max_length=40, unique=True)
    label = models.CharField(max_length=120)
    kept = models.BooleanField(default=False, help_text="Keep me signed in on this device.")
    # "thread": opened by a notification link, limited to the thread until re-verified.
    scope = models.CharField(max_length=10, default="full")
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.label} ({self.customer})"


class SpentNotificationLink(models.Model):
    """The nonce of each notification link used to sign in: the unique constraint is what
    makes a link single-use, even when two taps race. Rows older than
    NOTIFICATION_LINK_MAX_AGE guard nothing (the signature has expired) and may be deleted."""

    nonce = models.CharField(max_length=32, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    spent_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.nonce
