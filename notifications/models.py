"""Notifications: what each customer wants, their devices, and the Delivery outbox.

A `Delivery` is work that must not be lost: one row per (entry, channel, audience), written
in the same transaction as its entry (`notifications.outbound.planning.plan_deliveries`),
claimed by a conditional UPDATE before anything is sent, and moved only forward through its
statuses.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

from django.conf import settings
from django.db import connection, connections, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Least
from django.db.models.query import get_related_populators

from messaging.models import Entry, Thread

# Intake's model lives with intake (notifications/inbound/models.py); imported here so that
# Django loads it with this app (label `notifications`, table `notifications_inboundmessage`).
from notifications.inbound.models import InboundMessage  # noqa: F401
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


class PushDevice(models.Model):
    """A browser or installed app that may receive Web Push: what pywebpush needs of it."""

    # The push service's URL for this device: a capability, so unique across owners (a
    # shared device belongs to whoever subscribed last).
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def as_subscription_info(self) -> dict:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class PushSubscription(PushDevice):
    """One browser or installed app that may receive Web Push for a customer."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="push_subscriptions"
    )

    def __str__(self) -> str:
        return f"Push subscription {self.pk} of {self.customer}"


class StaffNotificationPreferences(models.Model):
    """How one staff member wants to hear of what is theirs: a customer message in a thread
    assigned to them, and an internal note that mentions them (@name). Staff without a row
    get `for_user()`'s defaults: email on, push on (push needs a subscribed device too)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="staff_notification_preferences",
    )
    email_enabled = models.BooleanField("Email", default=True)
    push_enabled = models.BooleanField("Push notifications", default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "staff notification preferences"

    def __str__(self) -> str:
        return f"Notification preferences of {self.user}"

    @classmethod
    def for_user(cls, user) -> StaffNotificationPreferences:
        """The stored row, or an unsaved one holding the defaults (reads never write)."""
        try:
            return cls.objects.get(user=user)
        except cls.DoesNotExist:
            return cls(user=user)


class StaffPushSubscription(PushDevice):
    """One browser that may receive Web Push for a staff member (kept apart from customers'
    devices: a customer's thread must never be able to name a staff device, nor the reverse)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_push_subscriptions"
    )

    def __str__(self) -> str:
        return f"Push subscription {self.pk} of {self.user}"


class _LoadedSelect:
    """One Delivery row and its select_related rows, as Django's own iterable builds them
    (django.db.models.query.ModelIterable), from SQL compiled once and a row read elsewhere."""

    MARKER = -7_031_977  # stands for the pk while compiling; replaced by the real one

    def __init__(self, queryset: models.QuerySet) -> None:
        self.db = queryset.db
        self.compiler = queryset.filter(pk=self.MARKER).query.get_compiler(using=self.db)
        self.sql, params = self.compiler.as_sql()
        if tuple(params) != (self.MARKER,):
            raise ValueError("claim_loaded() takes a queryset with select_related only")
        select, klass_info = self.compiler.select, self.compiler.klass_info
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in select[self.start : self.end]]
        self.populators = get_related_populators(klass_info, select, self.db)

    def instance(self, row) -> Delivery:
        row = next(iter(self.compiler.results_iter([[row]])))  # the fields' converters
        obj = Delivery.from_db(self.db, self.init_list, row[self.start : self.end])
        for populator in self.populators:
            populator.populate(row, obj)
        return obj


_loaded_selects = threading.local()  # compilers hold their thread's connection


def _loaded_select(queryset: models.QuerySet) -> _LoadedSelect:
    key = (queryset.db, repr(queryset.query.select_related))
    cache = _loaded_selects.__dict__.setdefault("by_shape", {})
    if key not in cache:
        cache[key] = _LoadedSelect(queryset)
    return cache[key]


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _prep(field: str, value, model=None):
    """A column's value (a Delivery's unless told) as the database takes it in a statement
    of our own."""
    return (model or Delivery)._meta.get_field(field).get_db_prep_value(value, connection)


class DeliveryQuerySet(models.QuerySet):
    """Every status transition of a Delivery, and nowhere else (tests/test_delivery_status_owner.py
    keeps it so; a new row's first status, held or queued, is chosen where it is planned).

    Each transition is one conditional UPDATE from the statuses it may leave (`LEAVES`), so
    racing workers, sweeps and provider callbacks never overwrite each other: whoever's
    UPDATE lands second finds the row gone from its filter. Statuses only move forward by
    rank (`RANK`, below) except where the sender itself takes a row back to the queue.
    """

    def _leaving(self, transition: str) -> DeliveryQuerySet:
        return self.filter(status__in=LEAVES[transition])

    def claim(self, *, token: uuid.UUID, now: dt.datetime, due_only: bool = True) -> int:
        """Take the queued rows of this queryset (only those due, unless told otherwise) for
        one sender. The conditional UPDATE is the lock: of any number of workers claiming the
        same row, exactly one sees a row count of 1. Returns how many rows were taken."""
        rows = self._leaving("claim")
        if due_only:
            rows = rows.filter(send_after__lte=now)
        return rows.update(
            status=Delivery.Status.SENDING,
            claim_token=token,
            claimed_at=now,
            attempts=F("attempts") + 1,
        )

    def claim_loaded(self, pk: int, *, token: uuid.UUID, now: dt.datetime) -> Delivery | None:
        """claim() of the one due row `pk`, returned loaded with this queryset's
        select_related, in one statement: the UPDATE … RETURNING is a CTE named after the
        table, so the SELECT Django compiles for the row reads the claimed row (its new
        status, token and attempts) in place of the table. None when the claim took nothing.
        The SELECT is compiled once per thread and shape (a delivery's claim ran two queries
        and compiled both: a fifth of a worker's CPU, bench.deliveries --gil)."""
        if self.query.where:
            raise ValueError("claim_loaded() takes a queryset with select_related only")
        connection = connections[self.db]
        if connection.vendor != "postgresql":
            # SQLite (`make run`'s default) has no UPDATE inside WITH: the claim, then the read.
            if not self.filter(pk=pk).claim(token=token, now=now):
                return None
            return self.get(pk=pk)
        table = connection.ops.quote_name(Delivery._meta.db_table)
        # The model's own table name; every value is a parameter.
        claim = (
            f"WITH {table} AS (UPDATE {table} SET status = %s, claim_token = %s,"  # noqa: S608
            f" claimed_at = %s, attempts = attempts + 1"
            f" WHERE id = %s AND status = ANY(%s) AND send_after <= %s RETURNING *) "
        )
        select = _loaded_select(self)
        with connection.cursor() as cursor:
            leaving = [str(status) for status in LEAVES["claim"]]
            sending = str(Delivery.Status.SENDING)
            cursor.execute(claim + select.sql, [sending, token, now, pk, leaving, now, pk])
            row = cursor.fetchone()
        return select.instance(row) if row is not None else None

    def claim_unread_emails(
        self, *, thread_id: int, written_by: dt.datetime, token: uuid.UUID, now: dt.datetime
    ) -> int:
        """claim() of the customer's queued emails of one thread, due or not, whose entries
        the customer has not read and that were written by `written_by`: the messages one
        email carries. Returns how many rows were taken. SQL written once: the ORM compiled
        this UPDATE's joins for every email (bench.deliveries --gil)."""
        if self.query.where:
            raise ValueError("claim_unread_emails() takes all rows; it filters them itself")
        leaving = LEAVES["claim"]
        sql = f"""
            UPDATE {_table(Delivery)} SET status = %s, claim_token = %s, claimed_at = %s,
                attempts = attempts + 1
            WHERE status IN ({", ".join(["%s"] * len(leaving))})
              AND channel = %s AND audience = %s
              AND entry_id IN (
                SELECT e.id FROM {_table(Entry)} e JOIN {_table(Thread)} t ON t.id = e.thread_id
                WHERE e.thread_id = %s AND e.seq > t.customer_read_seq AND e.created_at <= %s
              )
        """  # noqa: S608 - table names and placeholders only; every value is a parameter
        params = [
            _prep("status", Delivery.Status.SENDING),
            _prep("claim_token", token),
            _prep("claimed_at", now),
            *(_prep("status", status) for status in leaving),
            _prep("channel", Delivery.Channel.EMAIL),
            _prep("audience", Delivery.Audience.CUSTOMER),
            thread_id,
            _prep("created_at", written_by, Entry),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def claimed_by(self, token: uuid.UUID) -> DeliveryQuerySet:
        """The rows a claim took; results are recorded only through this, so a worker whose
        lease the sweeper took over cannot overwrite the newer attempt."""
        return self.filter(claim_token=token)

    def record_sent(self, *, provider_id: str, sent_at: dt.datetime, note: str = "") -> int:
        """The provider took it. A status callback may already have moved the row past
        "sent" (Twilio can call back before this UPDATE lands): the Case keeps that status,
        and the id is recorded anyway. QUEUED counts too: if the sweeper took the row back
        after a long stall and no one has claimed it again, this late success stands and the
        re-drive finds nothing."""
        sent = Delivery.Status.SENT
        return self.update(
            status=Case(
                When(status__in=LEAVES["record_sent"], then=Value(sent)), default=F("status")
            ),
            provider_id=provider_id[:200],
            sent_at=sent_at,
            last_error=note,
        )

    def record_claim_sent(
        self, token: uuid.UUID, *, provider_id: str, sent_at: dt.datetime, note: str = ""
    ) -> int:
        """record_sent() of the rows claim `token` took: the sender's way, every delivery.
        The same rule as SQL written once: the ORM compiled the Case for every delivery, a
        twentieth of a worker's CPU (bench.deliveries --gil)."""
        if self.query.where:
            raise ValueError("record_claim_sent() takes all rows; the token picks them")
        leaving = LEAVES["record_sent"]
        sql = f"""
            UPDATE {_table(Delivery)}
            SET status = CASE WHEN status IN ({", ".join(["%s"] * len(leaving))}) THEN %s
                         ELSE status END,
                provider_id = %s, sent_at = %s, last_error = %s
            WHERE claim_token = %s
        """  # noqa: S608 - table names and placeholders only; every value is a parameter
        params = [
            *(_prep("status", status) for status in leaving),
            _prep("status", Delivery.Status.SENT),
            _prep("provider_id", provider_id[:200]),
            _prep("sent_at", sent_at),
            _prep("last_error", note),
            _prep("claim_token", token),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def retry(self, *, send_after: dt.datetime, task_eta: dt.datetime | None, note: str) -> list:
        """A transient provider error: the rows still sending go back to the queue, due at
        `send_after` (the claim is released). Returns the ids that went back."""
        rows = self._leaving("retry")
        ids = list(rows.values_list("pk", flat=True))
        rows.filter(pk__in=ids).update(
            status=Delivery.Status.QUEUED, send_after=send_after, task_eta=task_eta, last_error=note
        )
        return ids

    def fail(self, *, reason: str, now: dt.datetime) -> int:
        """The attempt failed for good (a permanent error, or out of attempts). Only rows
        still in the attempt: one a callback already reported sent stays sent."""
        return self._leaving("fail").update(
            status=Delivery.Status.FAILED, last_error=reason, failed_at=now
        )

    def suppress(self, *, reason: str) -> int:
        """Not sent after all (the customer opted out or turned the channel off meanwhile)."""
        return self._leaving("suppress").update(
            status=Delivery.Status.SUPPRESSED, last_error=reason
        )

    def release_held(self, *, now: dt.datetime) -> int:
        """Held rows (quiet hours) go to the queue, due now at the latest."""
        return self._leaving("release_held").update(
            status=Delivery.Status.QUEUED,
            send_after=Least(F("send_after"), Value(now)),
            task_eta=now,
        )

    def cancel_held(self, *, reason: str) -> int:
        """Held rows (quiet hours) that will not go after all: what they announced was
        cancelled. Rows already queued or sent are left to go."""
        return self._leaving("cancel_held").update(
            status=Delivery.Status.SUPPRESSED, last_error=reason
        )

    def hold_until(self, release: dt.datetime) -> int:
        """Held rows wait until `release` instead (the customer changed their quiet hours)."""
        return self._leaving("release_held").update(send_after=release)

    def redrive_stalled(self, *, now: dt.datetime, note: str) -> int:
        """Rows whose worker stopped between claim and result (killed, lost) go back to the
        queue, due now; the claim token they carry no longer records anything."""
        return self._leaving("redrive_stalled").update(
            status=Delivery.Status.QUEUED, task_eta=now, last_error=note
        )

    def move_forward(self, status: str, **changes) -> list[Delivery]:
        """What a provider reported: set `status` (and `changes`) on the rows whose status
        ranks below it, and return those rows (with their entries, for the broadcast).
        Providers report late, twice and out of order: a late "sent" must never overwrite
        "delivered". The rows are locked while they move, so exactly these moved."""
        with transaction.atomic():
            moving = list(
                self.filter(status__in=statuses_below(status))
                .select_related("entry__thread__customer")
                .select_for_update(of=("self",))
            )
            if moving:
                Delivery.objects.filter(pk__in=[d.pk for d in moving]).update(
                    status=status, **changes
                )
        for delivery in moving:
            delivery.status = status
            for name, value in changes.items():
                setattr(delivery, name, value)
        return moving


class Delivery(models.Model):
    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        EMAIL = "email", "Email"
        PUSH = "push", "Push"

    class Audience(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        BUSINESS = "business", "Business"
        # One staff member (`staff_user`): the assignee of the thread, or someone mentioned.
        STAFF = "staff", "Staff member"

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
    # Audience STAFF only: whom it tells (their preferences and devices are read at send time).
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff_deliveries",
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["entry_id", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["entry", "channel", "audience"],
                condition=Q(staff_user__isnull=True),
                name="delivery_one_per_channel",
            ),
            # A staff member hears of one entry once per channel (a note naming @kim twice).
            models.UniqueConstraint(
                fields=["entry", "channel", "staff_user"],
                condition=Q(staff_user__isnull=False),
                name="delivery_one_per_staff_channel",
            ),
            models.CheckConstraint(
                condition=Q(audience="staff", staff_user__isnull=False)
                | (~Q(audience="staff") & Q(staff_user__isnull=True)),
                name="delivery_staff_user_iff_staff",
            ),
        ]
        indexes = [
            # The sweeper's scans: due held/queued rows and stale sending rows.
            models.Index(fields=["status", "send_after"], name="delivery_status_due"),
            # Insights: the failures of a period.
            models.Index(
                fields=["failed_at"],
                condition=models.Q(status="failed"),
                name="delivery_failed_at",
            ),
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


# What each DeliveryQuerySet transition leaves from. The sender's own steps name their
# statuses; what providers report (and "sent", which a callback may have overtaken) goes by
# rank. Retry and re-drive are the only moves back, both to the queue, both by the sender.
LEAVES = {
    "claim": [S.QUEUED],
    "record_sent": statuses_below(S.SENT),
    "retry": [S.SENDING],
    "fail": [S.SENDING, S.QUEUED],
    "suppress": [S.SENDING],
    "release_held": [S.HELD],
    "cancel_held": [S.HELD],
    "redrive_stalled": [S.SENDING],
}
