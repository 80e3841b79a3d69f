"""An announcement and its recipients, frozen when staff press Send.

Status (written only by `crm_events.announcements.actions._move`, tests/crm_events/
test_announcement_status_owner.py): draft (rows written, first batch not run yet) → sending →
done, or → cancelled from draft or sending.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.models import Business, Customer, CustomerTag, Project


class Announcement(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Starting"
        SENDING = "sending", "Sending"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    class Audience(models.TextChoices):
        VISIT_ON = "visit_on", "Customers with a visit on"
        PROJECT_STATUS = "project_status", "Customers whose project is"
        TAG = "tag", "Customers tagged"
        ALL = "all", "All customers"

    business = models.ForeignKey(Business, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(help_text="The message, with its {variables}.")
    audience = models.CharField(max_length=20, choices=Audience.choices)
    visit_date = models.DateField(null=True, blank=True)
    project_status = models.CharField(max_length=20, blank=True, choices=Project.Status.choices)
    tag = models.ForeignKey(CustomerTag, on_delete=models.PROTECT, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # Made by the compose page: a second submit of the same form finds this row instead of
    # sending again.
    form_token = models.UUIDField(unique=True)
    recipient_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    # When the next batch is due: the send rate spreads batches out; the sweeper queues a
    # batch whose task was lost.
    next_batch_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_batch_at"], name="announcement_due")]

    def __str__(self) -> str:
        return f"Announcement {self.pk} ({self.status})"

    @property
    def running(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.SENDING)


class AnnouncementRecipient(models.Model):
    """One customer of an announcement. `entry` is set in the transaction that appends it to
    their thread, so a recipient with an entry has it, and one without has nothing."""

    announcement = models.ForeignKey(
        Announcement, on_delete=models.CASCADE, related_name="recipients"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    # What its variables are filled from: the project named, the visit's time.
    project = models.ForeignKey(Project, on_delete=models.SET_NULL, null=True, blank=True)
    visit_starts_at = models.DateTimeField(null=True, blank=True)
    visit_ends_at = models.DateTimeField(null=True, blank=True)
    entry = models.OneToOneField(
        "messaging.Entry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Why it was not appended, when the append refused it (the customer's project moved to
    # another customer since Send, say): recorded so the run goes on instead of retrying it.
    skipped = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["announcement", "customer"], name="announcement_recipient_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer} in announcement {self.announcement_id}"
