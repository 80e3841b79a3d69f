"""The writes of an announcement: start it, send its next batch, cancel it.

Each recipient is appended in a transaction of its own that locks the announcement row (cancel
takes the same lock, so once a cancel commits no one more is appended) and sets the
recipient's `entry` together with the append; the append's idempotency key is
`announcement:<id>:customer:<id>`. So a batch run twice, two workers at once, or a worker
killed mid-batch and re-driven by the sweeper append each customer once.

Pacing: a batch appends ANNOUNCEMENT_BATCH_SIZE recipients, whose entries get their Delivery
rows from the ordinary planner (channels, quiet hours, opt-outs). The next batch waits until
the deliveries just made that go now (held ones do not count) have had time to go at each
channel's ANNOUNCEMENT_SEND_RATES: 50 SMS at 1 per second, 50 seconds. The batch's due time is
a column (`next_batch_at`), claimed by a conditional UPDATE like a Delivery: a late or doubled
task finds it taken, and the sweeper re-queues a batch whose task was lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from crm_events import actions as crm_actions
from crm_events.announcements import audience
from crm_events.announcements.models import Announcement, AnnouncementRecipient
from notifications.models import Delivery
from portal.celery import app, run_task
from portal.models import Business

logger = logging.getLogger(__name__)

Status = Announcement.Status
RUNNING = [Status.DRAFT, Status.SENDING]
BATCH_TASK = "crm_events.announcement_batch"
# A batch's claim: the sweeper takes it back when a worker held it this long.
BATCH_LEASE = dt.timedelta(minutes=5)
# A due batch whose task has not started this long after is queued again.
BATCH_GRACE = dt.timedelta(seconds=60)
# The longest countdown a batch task is published with (the Redis broker redelivers tasks
# older than its visibility timeout; notifications.outbound.outbox.MAX_COUNTDOWN).
MAX_COUNTDOWN = dt.timedelta(minutes=5)
# A countdown task may start a hair before its ETA by the database's clock (another host's);
# one that comes earlier still finds nothing due and the sweeper queues the batch later.
EARLY = dt.timedelta(milliseconds=500)


def _move(announcement_id: int, *, to: str, **changes) -> int:
    """The one writer of an announcement's status: a conditional UPDATE from the statuses
    `to` may be reached from (tests/crm_events/test_announcement_status_owner.py)."""
    leaves = {
        Status.SENDING: [Status.DRAFT],
        Status.DONE: [Status.SENDING],
        Status.CANCELLED: RUNNING,
    }[to]
    return Announcement.objects.filter(pk=announcement_id, status__in=leaves).update(
        status=to, **changes
    )


def key_for(announcement_id: int, customer_id: int) -> str:
    return f"announcement:{announcement_id}:customer:{customer_id}"


def start_announcement(
    *,
    business: Business,
    author: AbstractBaseUser,
    body: str,
    choice: audience.Choice,
    form_token: uuid.UUID,
    now: dt.datetime | None = None,
) -> tuple[Announcement, bool]:
    """Freeze the recipients and queue the first batch. Returns the announcement and whether
    it was made now: a second submit of the same form (`form_token`) returns the first one.
    Bad input (no one chosen, an unknown variable, too long) raises ValidationError and
    writes nothing."""
    existing = Announcement.objects.filter(form_token=form_token).first()
    if existing is not None:
        return existing, False
    checked = audience.preview(business=business, body=body, choice=choice)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            announcement = Announcement.objects.create(
                business=business,
                body=audience.clean_body(body),
                audience=choice.audience,
                visit_date=choice.visit_date,
                project_status=choice.project_status,
                tag=choice.tag,
                created_by=author,
                form_token=form_token,
                recipient_count=len(checked.recipients),
                created_at=now,
                next_batch_at=now,
            )
            AnnouncementRecipient.objects.bulk_create(
                AnnouncementRecipient(
                    announcement=announcement,
                    customer=r.customer,
                    project=r.project,
                    visit_starts_at=r.visit_starts_at,
                    visit_ends_at=r.visit_ends_at,
                )
                for r in checked.recipients
            )
            _queue_batch_on_commit(announcement.pk, wait=dt.timedelta(0))
    except IntegrityError:
        # The same form submitted twice at once: the other request made it.
        return Announcement.objects.get(form_token=form_token), False
    return announcement, True


def _queue_batch_on_commit(announcement_id: int, *, wait: dt.timedelta) -> None:
    """Queue the next batch after commit, with a countdown of `wait`. Without Redis (eager
    tasks) only work due now runs inline, and none waits past MAX_COUNTDOWN in the broker:
    the sweeper queues those when they are due."""
    if wait > MAX_COUNTDOWN or (wait > dt.timedelta(0) and app.conf.task_always_eager):
        return

    def publish() -> None:
        try:
            run_task(BATCH_TASK, announcement_id, countdown=wait.total_seconds() or None)
        except Exception:
            logger.exception("announcement %s: batch not queued; the sweeper will", announcement_id)

    transaction.on_commit(publish)


def _claim(announcement_id: int, now: dt.datetime) -> bool:
    """Take the due batch of a running announcement for this run: exactly one of any
    number of concurrent runs sees 1."""
    return bool(
        Announcement.objects.filter(
            pk=announcement_id, status__in=RUNNING, next_batch_at__lte=now + EARLY
        ).update(next_batch_at=now + BATCH_LEASE)
    )


def send_batch(*, announcement_id: int, now: dt.datetime | None = None) -> int:
    """Append the next batch of recipients' entries; returns how many were appended now."""
    now = now or timezone.now()
    if not _claim(announcement_id, now):
        return 0  # not due, taken by another run, finished or cancelled
    _move(announcement_id, to=Status.SENDING)
    pending = list(
        _waiting(announcement_id).values_list("pk", flat=True)[: settings.ANNOUNCEMENT_BATCH_SIZE]
    )
    appended = []
    for recipient_id in pending:
        try:
            entry_id = _append_one(announcement_id, recipient_id)
        except ValidationError as error:
            _skip(recipient_id, " ".join(error.messages))
            continue
        if entry_id is None:
            break  # cancelled meanwhile
        appended.append(entry_id)
    with transaction.atomic():
        announcement = Announcement.objects.select_for_update().get(pk=announcement_id)
        if announcement.status != Status.SENDING:
            return len(appended)
        left = _waiting(announcement_id).exists()
        if not left:
            _move(announcement_id, to=Status.DONE, finished_at=timezone.now(), next_batch_at=None)
        else:
            wait = pause_after(appended)
            Announcement.objects.filter(pk=announcement_id).update(next_batch_at=now + wait)
            _queue_batch_on_commit(announcement_id, wait=wait)
    return len(appended)


def _waiting(announcement_id: int):
    return AnnouncementRecipient.objects.filter(
        announcement_id=announcement_id, entry__isnull=True, skipped=""
    )


def _skip(recipient_id: int, reason: str) -> None:
    logger.warning("announcement recipient %s not appended: %s", recipient_id, reason)
    AnnouncementRecipient.objects.filter(pk=recipient_id, entry__isnull=True).update(
        skipped=reason[:300]
    )


def _append_one(announcement_id: int, recipient_id: int) -> int | None:
    """Append one recipient's entry; None when the announcement stopped running."""
    with transaction.atomic():
        # Cancel takes this lock too: after it commits, this finds the status changed.
        announcement = Announcement.objects.select_for_update().get(pk=announcement_id)
        if announcement.status != Status.SENDING:
            return None
        recipient = (
            AnnouncementRecipient.objects.select_for_update(of=("self",))
            .select_related("customer", "project")
            .get(pk=recipient_id)
        )
        if recipient.entry_id is not None:
            return recipient.entry_id  # an earlier run appended it
        entry = crm_actions.post_automated(
            customer=recipient.customer,
            body=audience.render(
                announcement.body,
                audience.Recipient(
                    customer=recipient.customer,
                    project=recipient.project,
                    visit_starts_at=recipient.visit_starts_at,
                    visit_ends_at=recipient.visit_ends_at,
                ),
            ),
            project=recipient.project,
            idempotency_key=key_for(announcement_id, recipient.customer_id),
        )
        AnnouncementRecipient.objects.filter(pk=recipient_id).update(entry=entry)
        return entry.pk


def pause_after(entry_ids: list[int]) -> dt.timedelta:
    """How long the deliveries of these entries that go now take at each channel's rate
    (held ones go when quiet hours end, not now)."""
    rates = settings.ANNOUNCEMENT_SEND_RATES
    counts = (
        Delivery.objects.filter(entry_id__in=entry_ids)
        .exclude(status=Delivery.Status.HELD)
        .values("channel")
        .annotate(n=Count("pk"))
    )
    seconds = max(
        (row["n"] / rates[row["channel"]] for row in counts if rates.get(row["channel"])),
        default=0.0,
    )
    return dt.timedelta(seconds=seconds)


def cancel_announcement(*, announcement_id: int, by: AbstractBaseUser) -> int:
    """Stop a running announcement: recipients not yet appended get nothing, and the held
    deliveries (quiet hours) of those appended are cancelled; deliveries already queued or
    sent go. Their entries stay in the threads (append-only). Returns how many deliveries
    were cancelled."""
    with transaction.atomic():
        Announcement.objects.select_for_update().get(pk=announcement_id)
        moved = _move(
            announcement_id, to=Status.CANCELLED, finished_at=timezone.now(), cancelled_by=by
        )
        if not moved:
            raise ValidationError("This announcement has already finished.", code="finished")
        entries = AnnouncementRecipient.objects.filter(
            announcement_id=announcement_id, entry__isnull=False
        ).values("entry_id")
        return Delivery.objects.filter(entry_id__in=entries).cancel_held(
            reason="The announcement was cancelled"
        )


def sweep_announcements(*, now: dt.datetime | None = None) -> int:
    """Periodic: queue the batch of each running announcement whose task is overdue (lost
    with Redis, or its worker died past the lease). Returns how many were queued."""
    now = now or timezone.now()
    overdue = list(
        Announcement.objects.filter(
            status__in=RUNNING, next_batch_at__lte=now - BATCH_GRACE
        ).values_list("pk", flat=True)
    )
    for announcement_id in overdue:
        run_task(BATCH_TASK, announcement_id)
    return len(overdue)
