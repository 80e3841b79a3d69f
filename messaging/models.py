"""The thread: one append-only history per customer.

Entries are written only by `messaging.actions`. Their content never changes after the
insert; on PostgreSQL a trigger (migration 0002) refuses it, and here the model layer
refuses it on every database. Only bookkeeping columns (`BOOKKEEPING_FIELDS`) may change.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce

from portal.models import Customer, Project

# Columns an UPDATE may touch: none. An entry is frozen at insert; when each side read it is
# the thread's watermark and its ReadMark rows, never a column of the entry.
BOOKKEEPING_FIELDS: frozenset[str] = frozenset()


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete an entry's content."""


class Side(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    STAFF = "staff", "Staff"


class Thread(models.Model):
    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="thread")
    # Highest sequence number handed out; bumped under a row lock in the append transaction.
    last_seq = models.PositiveIntegerField(default=0)
    last_entry_at = models.DateTimeField(null=True, blank=True)

    # Unread counts are counter differences, never COUNT(*) over entries:
    # `*_inbound` counts entries that the side should read, `*_read` how many of them it has.
    customer_inbound = models.PositiveIntegerField(default=0)
    customer_read = models.PositiveIntegerField(default=0)
    customer_read_seq = models.PositiveIntegerField(default=0)
    customer_read_at = models.DateTimeField(null=True, blank=True)
    staff_inbound = models.PositiveIntegerField(default=0)
    staff_read = models.PositiveIntegerField(default=0)
    staff_read_seq = models.PositiveIntegerField(default=0)
    staff_read_at = models.DateTimeField(null=True, blank=True)
    # 1 while staff have something unread: the staff list's first sort key, computed by the
    # database from the counters so it can never disagree with them. On PostgreSQL it is
    # indexed with the second key, latest activity (index thread_staff_list_order, migration
    # 0007: SQLite cannot index NULLS LAST), so the list's first page is read off the index.
    staff_has_unread = models.GeneratedField(
        expression=models.Case(
            models.When(staff_inbound__gt=models.F("staff_read"), then=models.Value(1)),
            default=models.Value(0),
        ),
        output_field=models.SmallIntegerField(),
        db_persist=True,
    )

    # The kind of the newest message (staff, automated or customer; notes, cards and calls are
    # not messages), set by the append that writes it: "Needs reply" on the staff list is
    # "the last message is the customer's", read here rather than from entries per thread.
    last_message_kind = models.CharField(max_length=20, blank=True, default="")

    def __str__(self) -> str:
        return f"Thread with {self.customer}"

    @property
    def customer_unread(self) -> int:
        return self.customer_inbound - self.customer_read

    @property
    def staff_unread(self) -> int:
        return self.staff_inbound - self.staff_read


class EntryQuerySet(models.QuerySet):
    def for_customer(self) -> EntryQuerySet:
        """What a customer may see: no internal notes, and call transcripts never loaded."""
        return self.exclude(kind=Entry.Kind.INTERNAL_NOTE).defer("transcript")

    def delete(self):
        raise AppendOnlyError("Thread entries cannot be deleted.")

    def update(self, **kwargs):
        content = set(kwargs) - BOOKKEEPING_FIELDS
        if content:
            raise AppendOnlyError(
                f"Thread entries are append-only: cannot update {sorted(content)}"
            )
        return super().update(**kwargs)

    update.queryset_only = True  # type: ignore[attr-defined]


class Entry(models.Model):
    class Kind(models.TextChoices):
        STAFF_MESSAGE = "staff_message", "Message from the business"
        AUTOMATED = "automated", "Automated message"
        CUSTOMER_REPLY = "customer_reply", "Customer reply"
        EVENT_CARD = "event_card", "Event card"
        # A card the customer made (a work request): shown like an event card, counted
        # unread for staff like a reply.
        CUSTOMER_CARD = "customer_card", "Card from the customer"
        CALL = "call", "Phone call"
        INTERNAL_NOTE = "internal_note", "Internal note"

    class Channel(models.TextChoices):
        PORTAL = "portal", "Portal"
        SMS = "sms", "SMS"
        EMAIL = "email", "Email"
        SYSTEM = "system", "System"

    thread = models.ForeignKey(Thread, on_delete=models.PROTECT, related_name="entries")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    body = models.TextField(blank=True)
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    urgent = models.BooleanField(default=False)

    class CardKind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        PAYMENT = "payment", "Payment"
        ESTIMATE = "estimate", "Estimate"
        CONTRACT = "contract", "Contract"
        APPOINTMENT = "appointment", "Appointment"
        OPT_OUT = "opt_out", "SMS preference"
        ACCOUNT = "account", "Contact details"
        REQUEST = "request", "Work request"

    # Event cards: what the card is about, and the document it links to.
    card_kind = models.CharField(max_length=20, choices=CardKind.choices, blank=True)
    link_url = models.CharField(max_length=300, blank=True)
    # A second link a card may offer, outside our site (an invoice's "Pay $4,200 —
    # checkout.stripe.com"): https only, opened in a new tab.
    # db_default: rows written by SQL alone (bulk loads of benches, tests) need not name them.
    action_label = models.CharField(max_length=120, blank=True, db_default="")
    action_url = models.CharField(max_length=500, blank=True, db_default="")
    # Call markers.
    call_started_at = models.DateTimeField(null=True, blank=True)
    call_duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    transcript = models.TextField(blank=True, help_text="Staff only; never shown to customers.")
    # How many files came with it (its Attachment rows), so pages load attachments only for
    # the entries that have some.
    attachment_count = models.PositiveSmallIntegerField(default=0)
    # Provider id (Twilio MessageSid, email Message-ID, CRM key) or the page's send key.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField()
    # When the side it is for read it ("Seen 10:24am"), set on the entries of a page by
    # messaging.queries.load_seen (read from ReadMark); None when unread or not loaded.
    seen_at = None

    objects = EntryQuerySet.as_manager()

    class Meta:
        ordering = ["thread", "seq"]
        verbose_name_plural = "entries"
        indexes = [
            # Insights (portal/insights.py): a thread's latest staff message and the customer
            # messages after it (who is waiting), read off the index alone (created_at is in
            # it), without reading the rest of the thread.
            models.Index(
                fields=["thread", "kind", "seq"],
                include=["created_at"],
                name="entry_thread_kind_seq",
            ),
            # Insights: a period's messages, read by time without touching notes, cards, calls,
            # and from the index alone (it holds every column the two queries read).
            models.Index(
                fields=["created_at"],
                include=["thread", "seq", "kind", "channel", "author"],
                condition=models.Q(kind__in=["staff_message", "automated", "customer_reply"]),
                name="entry_message_time",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["thread", "seq"], name="entry_seq_unique"),
            # A key is one author's (the page's send key, a provider's message id): another
            # author reusing it writes their own message. Authorless entries (automations,
            # the CRM) share the author "0".
            models.UniqueConstraint(
                "thread",
                Coalesce("author", models.Value(0)),
                "idempotency_key",
                condition=models.Q(idempotency_key__isnull=False),
                name="entry_idempotency_key_per_author",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.get_kind_display()}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            fields = set(kwargs.get("update_fields") or ())
            if not fields or fields - BOOKKEEPING_FIELDS:
                raise AppendOnlyError("Thread entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Thread entries cannot be deleted.")

    # -- what the entry is, for templates and routing --------------------------------------

    @property
    def staff_only(self) -> bool:
        return self.kind == self.Kind.INTERNAL_NOTE


# What the staff list calls a message (its "last message", "Needs reply").
MESSAGE_KINDS = (Entry.Kind.STAFF_MESSAGE, Entry.Kind.AUTOMATED, Entry.Kind.CUSTOMER_REPLY)

# Which kinds count as unread for a side (and show "Seen" to the other once it has read them).
INBOUND_KINDS = {
    Side.CUSTOMER: (Entry.Kind.STAFF_MESSAGE, Entry.Kind.AUTOMATED, Entry.Kind.EVENT_CARD),
    Side.STAFF: (Entry.Kind.CUSTOMER_REPLY, Entry.Kind.CUSTOMER_CARD),
}

# What the customer writes into the thread: their files count against their budget.
CUSTOMER_KINDS = (Entry.Kind.CUSTOMER_REPLY, Entry.Kind.CUSTOMER_CARD)
CARD_KINDS = (Entry.Kind.EVENT_CARD, Entry.Kind.CUSTOMER_CARD)


def attachment_path(attachment: Attachment, filename: str) -> str:
    # Unguessable, and never the sender's own file name (which is kept in `name`): files are
    # served only through the access-checked view, whatever their path.
    return f"attachments/{attachment.entry.thread_id}/{uuid.uuid4().hex}{attachment.extension}"


class AttachmentQuerySet(models.QuerySet):
    def delete(self):
        raise AppendOnlyError("Attachments cannot be deleted.")

    def fill_sha256(self, *, pk: int, sha256: str) -> int:
        """The backfill's one write: the hash of a file stored before hashes were kept. Only
        an empty hash may be filled (the PostgreSQL trigger allows nothing else either)."""
        return models.QuerySet.update(self.filter(pk=pk, sha256=""), sha256=sha256)

    def update(self, **kwargs):
        raise AppendOnlyError("Attachments are append-only.")

    update.queryset_only = True  # type: ignore[attr-defined]


class Attachment(models.Model):
    """A file that came with an entry: a photo texted in (MMS) or attached in the portal, a
    file attached to an email. Written with its entry, by messaging.actions, and as immutable:
    customers and staff see it where they see the entry, except files kept for staff only."""

    # What may be attached, by MIME type: the extension stored, and whether it is an image a
    # browser shows (HEIC is an image, but only Safari shows it: it is offered as a file).
    TYPES = {
        "image/jpeg": (".jpg", True),
        "image/png": (".png", True),
        "image/gif": (".gif", True),
        "image/webp": (".webp", True),
        "image/heic": (".heic", False),
        "application/pdf": (".pdf", False),
    }

    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=200)
    # A small JPEG for the timeline, for images we can read; the file itself opens full size.
    thumbnail = models.FileField(upload_to=attachment_path, max_length=200, blank=True)
    name = models.CharField(max_length=200, help_text="The file's name as the sender gave it.")
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # Email attachments other than images are kept for staff, not shown in the thread.
    staff_only = models.BooleanField(default=False)
    # SHA-256 of the file's bytes (hex), taken when it is stored: transcripts list it, so a
    # copy of the file can be checked against the record. Empty only for files stored before
    # it was kept, until migration 0011 or `manage.py backfill_attachment_hashes` fills it.
    sha256 = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AttachmentQuerySet.as_manager()

    class Meta:
        ordering = ["entry", "pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.content_type}) on {self.entry}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Attachments are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Attachments cannot be deleted.")

    @property
    def extension(self) -> str:
        return self.TYPES.get(self.content_type, (".bin", False))[0]

    @property
    def is_image(self) -> bool:
        return self.TYPES.get(self.content_type, ("", False))[1]


class ReadMark(models.Model):
    """One read action: `side` read `thread` up to `up_to_seq` at `at`. Appended by
    messaging.actions.mark_read each time the side's watermark (Thread.<side>_read_seq) moves,
    so reading a 100,000-entry thread writes one row, not one per entry. An entry was seen
    at the earliest mark of its reader whose up_to_seq reaches it (queries.seen_at)."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="read_marks")
    side = models.CharField(max_length=10, choices=Side.choices)
    up_to_seq = models.PositiveIntegerField()
    at = models.DateTimeField()

    class Meta:
        constraints = [
            # The watermark only moves forward: one mark per side and sequence number.
            models.UniqueConstraint(
                fields=["thread", "side", "up_to_seq"], name="readmark_per_side_seq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} read {self.thread_id} up to #{self.up_to_seq}"
