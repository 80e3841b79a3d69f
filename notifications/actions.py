"""Writes for notifications: planning deliveries, sending them, recording what providers say,
and the customer's preferences and devices.

The life of a Delivery:

1. `plan_deliveries` writes it inside the entry's append transaction (called only by
   `messaging.actions`), queued, or held until quiet hours end. Its task is queued on commit.
2. `send_delivery` (the Celery task's body) claims it with a conditional UPDATE
   (queued → sending, only if due), so two workers never both send it; calls the provider
   outside any transaction; and records the result under the claim's token.
3. Transient errors put it back to queued with a backoff; permanent ones fail it for good.
4. `sweep_deliveries` (periodic) releases held rows whose time has come, re-drives rows stuck
   in sending past a lease (a worker died), and re-queues due rows whose task went missing.
5. Provider callbacks (`record_sms_status`, `record_email_event`) move status forward only.

Only the claim holder, or the sweeper after the claim's lease expired, moves a row back from
sending to queued; every other status write is conditional on moving forward.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from messaging.models import Entry
from notifications import content, transports
from notifications.models import (
    Delivery,
    NotificationPreferences,
    PushSubscription,
    statuses_below,
)
from notifications.quiet_hours import QuietHours, release_time
from notifications.transports import TransportError
from portal.models import Customer

logger = logging.getLogger(__name__)

Status = Delivery.Status
Channel = Delivery.Channel
Audience = Delivery.Audience
Kind = Entry.Kind

# Entries the customer is told about, and the one kind the business is told about. Internal
# notes and call markers (and reads, which are not entries) make no delivery.
CUSTOMER_NOTIFIED_KINDS = frozenset({Kind.STAFF_MESSAGE, Kind.AUTOMATED, Kind.EVENT_CARD})
BUSINESS_NOTIFIED_KINDS = frozenset({Kind.CUSTOMER_REPLY})

HOLD_QUIET_HOURS = "quiet_hours"
HOLD_EMAIL_DELAY = "email_delay"

# A task is published only for work due within this long; later work waits as a row for the
# sweeper. (The Redis broker redelivers unacknowledged messages after its visibility timeout,
# so long countdowns would be sent twice; rows cannot be.)
MAX_COUNTDOWN = dt.timedelta(minutes=5)


def _delay_setting(name: str) -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, name))


# -- planning (inside the append transaction) --------------------------------------------------


def plan_deliveries(*, entry: Entry, customer: Customer) -> list[Delivery]:
    """Write the Delivery rows `entry` calls for and register their tasks to be queued when
    the transaction commits. Must run inside the append transaction, so an entry and its
    notifications are committed (or rolled back) together: nothing lost, nothing phantom.

    To the customer (staff, automated and CRM messages): one row per channel they enabled and
    can be reached on, held until the end of quiet hours unless the entry is urgent; email
    waits EMAIL_NOTIFICATION_DELAY_SECONDS in case they read it in the portal first.
    To the business (customer replies): one row, by the routing rule in `_business_route`.
    """
    now = timezone.now()
    if entry.kind in CUSTOMER_NOTIFIED_KINDS:
        rows = _plan_for_customer(entry=entry, customer=customer, now=now)
    elif entry.kind in BUSINESS_NOTIFIED_KINDS:
        rows = _plan_for_business(entry=entry, customer=customer, now=now)
    else:
        return []
    if not rows:
        return []
    Delivery.objects.bulk_create(rows)
    _queue_on_commit([row for row in rows if row.status == Status.QUEUED])
    return rows


def _customer_channels(customer: Customer, prefs: NotificationPreferences) -> list[tuple]:
    """(channel, recipient) pairs a customer can be reached on right now."""
    channels = []
    if prefs.sms_enabled and customer.phone and not prefs.sms_opted_out:
        channels.append((Channel.SMS, customer.phone))
    # A customer who chose SMS but replied STOP still hears from us: by email instead.
    sms_fallback = prefs.sms_enabled and prefs.sms_opted_out
    if customer.email and (prefs.email_enabled or sms_fallback):
        channels.append((Channel.EMAIL, customer.email))
    if prefs.push_enabled and transports.push_configured():
        devices = customer.push_subscriptions.count()
        if devices:
            channels.append((Channel.PUSH, _devices(devices)))
    return channels


def _devices(count: int) -> str:
    return f"{count} device{'s' if count != 1 else ''}"


def quiet_hours_of(prefs: NotificationPreferences) -> QuietHours | None:
    if not prefs.quiet_hours_enabled:
        return None
    return QuietHours(start=prefs.quiet_start, end=prefs.quiet_end, time_zone=prefs.time_zone)


def _customer_schedule(
    *, channel: str, urgent: bool, prefs: NotificationPreferences, now: dt.datetime
) -> tuple[str, dt.datetime, str]:
    """(status, send_after, hold_reason) for one channel of a customer notification."""
    release = now if urgent else release_time(quiet_hours_of(prefs), now)
    if channel == Channel.EMAIL:
        after_delay = now + _delay_setting("EMAIL_NOTIFICATION_DELAY_SECONDS")
        if after_delay > release:
            return Status.QUEUED, after_delay, HOLD_EMAIL_DELAY
    if release > now:
        return Status.HELD, release, HOLD_QUIET_HOURS
    return Status.QUEUED, now, ""


def _plan_for_customer(*, entry: Entry, customer: Customer, now: dt.datetime) -> list[Delivery]:
    prefs = NotificationPreferences.for_customer(customer)
    rows = []
    for channel, recipient in _customer_channels(customer, prefs):
        status, send_after, reason = _customer_schedule(
            channel=channel, urgent=entry.urgent, prefs=prefs, now=now
        )
        rows.append(
            Delivery(
                entry=entry,
                channel=channel,
                audience=Audience.CUSTOMER,
                recipient=recipient,
                status=status,
                hold_reason=reason,
                send_after=send_after,
                task_eta=_task_eta(status, send_after, now),
                created_at=now,
            )
        )
    return rows


def _business_route(customer: Customer) -> tuple[str, str] | None:
    """How a customer's reply reaches the business: by SMS when the customer has a phone on
    file (phone only, or phone and email) and the business can receive SMS; otherwise by
    email."""
    business = customer.business
    if customer.phone and business.sms_number:
        return Channel.SMS, business.sms_number
    if business.email:
        return Channel.EMAIL, business.email
    return None


def _plan_for_business(*, entry: Entry, customer: Customer, now: dt.datetime) -> list[Delivery]:
    route = _business_route(customer)
    if route is None:
        logger.warning("business %s has neither SMS nor email; reply not notified", customer)
        return []
    channel, recipient = route
    return [
        Delivery(
            entry=entry,
            channel=channel,
            audience=Audience.BUSINESS,
            recipient=recipient,
            status=Status.QUEUED,
            send_after=now,
            task_eta=_task_eta(Status.QUEUED, now, now),
            created_at=now,
        )
    ]


# -- queueing tasks ----------------------------------------------------------------------------


def _publishes(send_after: dt.datetime, now: dt.datetime) -> bool:
    """Whether a task is published for work due at `send_after`: only for work due soon (no
    long countdowns), and with eager tasks (no Redis) only for work due now, since an eager
    task cannot wait. Everything else waits as a row for the sweeper."""
    from portal.celery import app

    wait = send_after - now
    if wait > MAX_COUNTDOWN:
        return False
    return wait <= dt.timedelta(0) or not app.conf.task_always_eager


def _task_eta(status: str, send_after: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """What to record as the row's task_eta: when its task will run, or None if no task is
    published for it (then the sweeper picks it up as soon as it is due)."""
    if status == Status.QUEUED and _publishes(send_after, now):
        return max(send_after, now)
    return None


def _queue_on_commit(deliveries: list[Delivery]) -> None:
    """Queue the send task of each delivery once the current transaction commits (at once
    when there is none). The only place delivery tasks are queued."""
    due = [(d.pk, d.send_after) for d in deliveries]
    if due:
        # robust: whatever goes wrong here is logged; the message is committed either way.
        transaction.on_commit(lambda: _publish(due), robust=True)


def _publish(due: list[tuple[int, dt.datetime]]) -> None:
    from notifications import tasks

    now = timezone.now()
    for delivery_id, send_after in due:
        if not _publishes(send_after, now):
            continue  # the sweeper queues it when it is due
        wait = max(dt.timedelta(0), send_after - now)
        try:
            tasks.deliver.apply_async(args=[delivery_id], countdown=wait.total_seconds() or None)
        except KombuOperationalError:
            # The broker is down. The entry is committed and the row is queued: the sweeper
            # re-queues it once Redis is back. Sending a message must not fail on this.
            logger.warning(
                "could not queue delivery %s (broker unreachable); the sweeper will", delivery_id
            )
        except Exception:
            # With eager tasks the task itself ran here and failed: its row stays claimed and
            # the sweeper sends it again after the lease.
            logger.exception(
                "delivery %s failed to queue or to run; the sweeper will retry", delivery_id
            )


# -- sending (the task body; never inside a transaction) ---------------------------------------


@dataclass
class _Claim:
    delivery: Delivery
    token: uuid.UUID
    now: dt.datetime


def send_delivery(*, delivery_id: int) -> str | None:
    """Send one delivery if it is due and nobody else is sending it. Returns its status
    afterwards, or None when there was nothing to do (not due, already taken, finished)."""
    claim = _claim(delivery_id)
    if claim is None:
        return None
    delivery = claim.delivery
    sender = {Channel.SMS: _send_sms, Channel.EMAIL: _send_email, Channel.PUSH: _send_push}
    started = time.perf_counter()
    try:
        status, provider_seconds = sender[delivery.channel](claim)
    except Exception as exc:
        # A bug or an outage of our own, not a provider's answer: retried like a transient
        # error, so that a row which cannot be sent ends as "failed", never in a loop.
        logger.exception("delivery %s: unexpected error while sending", delivery.pk)
        error = TransportError(f"Internal error ({type(exc).__name__})", permanent=False)
        status, provider_seconds = _record_failure(claim, error), 0.0
    # bench/deliveries.py reads these lines for the share of time spent outside the provider.
    logger.info(
        "delivery %s %s to %s: %s (provider %.1f ms of %.1f ms)",
        delivery.pk,
        delivery.channel,
        delivery.audience,
        status,
        provider_seconds * 1000,
        (time.perf_counter() - started) * 1000,
    )
    return status


def _claim(delivery_id: int) -> _Claim | None:
    now = timezone.now()
    token = uuid.uuid4()
    # The conditional UPDATE is the lock: of any number of workers running this task for the
    # same row, exactly one sees a row count of 1.
    claimed = Delivery.objects.filter(
        pk=delivery_id, status=Status.QUEUED, send_after__lte=now
    ).update(status=Status.SENDING, claim_token=token, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related(
        "entry__thread__customer__business",
        "entry__thread__customer__notification_preferences",
        "entry__author",
    ).get(pk=delivery_id)
    return _Claim(delivery=delivery, token=token, now=now)


def _claimed_preferences(customer: Customer) -> NotificationPreferences:
    """The customer's preferences as loaded with the claimed delivery (no extra query): the
    state right after the claim, which is what the suppression checks must see."""
    try:
        return customer.notification_preferences
    except NotificationPreferences.DoesNotExist:
        return NotificationPreferences(customer=customer, time_zone=customer.time_zone)


def _mine(token: uuid.UUID):
    return Delivery.objects.filter(claim_token=token)


def _record_sent(token: uuid.UUID, provider_id: str, *, note: str = "") -> str:
    # A status callback may already have moved the row past "sent" (Twilio can call back
    # before this UPDATE lands): the Case keeps that status, and the id is recorded anyway.
    # QUEUED counts as ours too: if the sweeper took the row back after a long stall and no
    # one has claimed it again, this late success stands and the re-drive finds nothing.
    _mine(token).update(
        status=Case(
            When(status__in=[Status.SENDING, Status.QUEUED], then=Value(Status.SENT)),
            default=F("status"),
        ),
        provider_id=provider_id[:200],
        sent_at=timezone.now(),
        last_error=note,
    )
    return Status.SENT


def _record_suppressed(token: uuid.UUID, reason: str) -> str:
    _mine(token).filter(status=Status.SENDING).update(status=Status.SUPPRESSED, last_error=reason)
    return Status.SUPPRESSED


def backoff(attempts: int) -> dt.timedelta:
    """Exponential backoff with jitter: about base·2^(n-1), capped, times a random factor in
    [0.5, 1) so that a burst of failures does not retry in lockstep."""
    base = settings.NOTIFICATIONS_RETRY_BASE_SECONDS
    cap = settings.NOTIFICATIONS_RETRY_MAX_SECONDS
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return dt.timedelta(seconds=ceiling * random.uniform(0.5, 1.0))


def _record_failure(claim: _Claim, error: TransportError) -> str:
    """Transient: back to queued after a backoff (the claim is released). Permanent, or out
    of attempts: failed, with the reason staff will read."""
    attempts = claim.delivery.attempts
    now = timezone.now()
    if not error.permanent and attempts < settings.NOTIFICATIONS_MAX_ATTEMPTS:
        retry_at = now + backoff(attempts)
        ids = list(_mine(claim.token).filter(status=Status.SENDING).values_list("pk", flat=True))
        _mine(claim.token).filter(pk__in=ids, status=Status.SENDING).update(
            status=Status.QUEUED,
            send_after=retry_at,
            task_eta=_task_eta(Status.QUEUED, retry_at, now),
            last_error=f"{error.message} (attempt {attempts}; will retry)",
        )
        _publish([(pk, retry_at) for pk in ids])
        return "retry"
    message = error.message
    if not error.permanent:
        message = f"{message} (gave up after {attempts} attempts)"
    _mine(claim.token).filter(status__in=[Status.SENDING, Status.QUEUED]).update(
        status=Status.FAILED, last_error=message, failed_at=now
    )
    return Status.FAILED


def _customer_suppression(delivery: Delivery, prefs: NotificationPreferences) -> str:
    """Why a customer notification should not go after all ("" if it should)."""
    entry = delivery.entry
    if entry.read_at is not None:
        return "Read in the portal before it was sent"
    if delivery.channel == Channel.SMS:
        if prefs.sms_opted_out:
            return "The number opted out of texts (STOP)"
        if not prefs.sms_enabled:
            return "Texts turned off by the customer"
    if delivery.channel == Channel.EMAIL and not (
        prefs.email_enabled or (prefs.sms_enabled and prefs.sms_opted_out)
    ):
        return "Email turned off by the customer"
    if delivery.channel == Channel.PUSH and not prefs.push_enabled:
        return "Push turned off by the customer"
    return ""


def _timed(call):
    started = time.perf_counter()
    try:
        return call(), time.perf_counter() - started, None
    except TransportError as error:
        return None, time.perf_counter() - started, error


def _send_sms(claim: _Claim) -> tuple[str, float]:
    delivery = claim.delivery
    entry = delivery.entry
    customer = entry.thread.customer
    if delivery.audience == Audience.CUSTOMER:
        prefs = _claimed_preferences(customer)
        reason = _customer_suppression(delivery, prefs)
        if reason:
            if prefs.sms_opted_out:
                _ensure_email_fallback(entry=entry, customer=customer)
            return _record_suppressed(claim.token, reason), 0.0
        body = content.sms_for_customer(entry)
    else:
        body = content.sms_for_business(entry, customer)
    callback = f"{settings.SITE_URL}{reverse('twilio_status')}?d={delivery.pk}"
    sid, seconds, error = _timed(
        lambda: transports.sms_transport().send(
            to=delivery.recipient, body=body, status_callback=callback
        )
    )
    if error is None:
        return _record_sent(claim.token, sid), seconds
    status = _record_failure(claim, error)
    if error.code == transports.TWILIO_UNSUBSCRIBED and delivery.audience == Audience.CUSTOMER:
        # The carrier says this number replied STOP: no more texts until START, and this
        # message (and the next ones) go by email instead.
        set_sms_opt_out(customer=customer, opted_out=True)
        _ensure_email_fallback(entry=entry, customer=customer)
    return status, seconds


def _send_email(claim: _Claim) -> tuple[str, float]:
    delivery = claim.delivery
    entry = delivery.entry
    customer = entry.thread.customer
    business = customer.business
    if delivery.audience == Audience.BUSINESS:
        message = content.business_email(
            entry=entry,
            customer=customer,
            business=business,
            to=delivery.recipient,
            delivery_id=delivery.pk,
        )
    else:
        prefs = _claimed_preferences(customer)
        reason = _customer_suppression(delivery, prefs)
        if reason:
            return _record_suppressed(claim.token, reason), 0.0
        batch = _claim_email_batch(claim)
        message = content.customer_email(
            entries=[d.entry for d in batch],
            customer=customer,
            business=business,
            delivery_id=delivery.pk,
        )
    provider_id, seconds, error = _timed(lambda: transports.email_transport().send(message))
    if error is None:
        return _record_sent(claim.token, provider_id), seconds
    return _record_failure(claim, error), seconds


def _claim_email_batch(claim: _Claim) -> list[Delivery]:
    """Join the customer's other queued emails of this thread to this one: the messages
    written before it, and those written within its delay window, go as one email. They are
    claimed under the same token, so they succeed or fail together. Emails held for quiet
    hours stay held: an urgent message's email does not carry them out early."""
    delivery = claim.delivery
    window_end = delivery.entry.created_at + _delay_setting("EMAIL_NOTIFICATION_DELAY_SECONDS")
    joining = Delivery.objects.filter(
        entry__thread_id=delivery.entry.thread_id,
        channel=Channel.EMAIL,
        audience=Audience.CUSTOMER,
        status=Status.QUEUED,
        entry__read_at__isnull=True,
        entry__created_at__lte=window_end,
    ).values_list("pk", flat=True)
    ids = list(joining)
    if ids:
        Delivery.objects.filter(pk__in=ids, status=Status.QUEUED).update(
            status=Status.SENDING,
            claim_token=claim.token,
            claimed_at=claim.now,
            attempts=F("attempts") + 1,
        )
    return list(_mine(claim.token).select_related("entry").order_by("entry__seq"))


def _send_push(claim: _Claim) -> tuple[str, float]:
    delivery = claim.delivery
    entry = delivery.entry
    customer = entry.thread.customer
    prefs = _claimed_preferences(customer)
    reason = _customer_suppression(delivery, prefs)
    subscriptions = list(customer.push_subscriptions.all()) if not reason else []
    if not reason and not subscriptions:
        reason = "No device is subscribed any more"
    transport = transports.push_transport()
    if not reason and transport is None:
        reason = "Push is not configured on this server"
    if reason:
        return _record_suppressed(claim.token, reason), 0.0
    payload = content.push_payload(entry, customer.business)
    result, seconds = _push_to_all(
        transport, subscriptions, payload, urgency="high" if entry.urgent else "normal"
    )
    if result.sent:
        return _record_sent(claim.token, result.provider_id, note=result.summary), seconds
    return _record_failure(claim, result.error()), seconds


@dataclass
class _PushResult:
    sent: int
    provider_id: str
    errors: list[TransportError]

    @property
    def summary(self) -> str:
        return "; ".join(e.message for e in self.errors)

    def error(self) -> TransportError:
        # Retry if any device might still take it; fail when every one said never.
        permanent = all(e.permanent for e in self.errors)
        return TransportError(self.summary or "no device", permanent=permanent)


def _push_to_all(transport, subscriptions, payload: dict, *, urgency: str):
    """Send to each device; forget devices whose push service says they are gone."""
    sent, location, errors, gone, ok_ids = 0, "", [], [], []
    seconds = 0.0
    for subscription in subscriptions:
        answer, took, error = _timed(
            lambda s=subscription: transport.send(
                subscription=s.as_subscription_info(),
                payload=payload,
                ttl=settings.WEB_PUSH_TTL_SECONDS,
                urgency=urgency,
            )
        )
        seconds += took
        if error is None:
            sent += 1
            location = location or answer
            ok_ids.append(subscription.pk)
            continue
        if error.code in transports.GONE_STATUSES:
            gone.append(subscription.pk)
            if error.code in (404, 410):
                error = TransportError(
                    f"Subscription expired ({error.code}); device removed", permanent=True
                )
        errors.append(error)
    if gone:
        PushSubscription.objects.filter(pk__in=gone).delete()
    if ok_ids:
        PushSubscription.objects.filter(pk__in=ok_ids).update(last_success_at=timezone.now())
    provider_id = location or (_devices(sent) if sent else "")
    return _PushResult(sent=sent, provider_id=provider_id, errors=errors), seconds


def _ensure_email_fallback(*, entry: Entry, customer: Customer) -> None:
    """Make sure a customer notification that could not go by SMS goes by email."""
    if not customer.email:
        return
    now = timezone.now()
    prefs = NotificationPreferences.for_customer(customer)
    status, send_after, reason = _customer_schedule(
        channel=Channel.EMAIL, urgent=entry.urgent, prefs=prefs, now=now
    )
    row = Delivery(
        entry=entry,
        channel=Channel.EMAIL,
        audience=Audience.CUSTOMER,
        recipient=customer.email,
        status=status,
        hold_reason=reason,
        send_after=send_after,
        task_eta=_task_eta(status, send_after, now),
        created_at=now,
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        return  # the entry already has its email
    if status == Status.QUEUED:
        _queue_on_commit([row])


# -- the sweeper -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    released: int = 0
    redriven: int = 0
    requeued: int = 0


def sweep_deliveries(*, now: dt.datetime | None = None, limit: int = 500) -> SweepResult:
    """Periodic: release held deliveries whose time has come, re-drive those stuck in sending
    past the lease (their worker died between claim and result), and re-queue due ones whose
    task is long overdue (lost with a Redis outage). Each row moves by its own conditional
    UPDATE, so overlapping sweeps and workers never double a send."""
    now = now or timezone.now()
    released = _sweep(
        Delivery.objects.filter(status=Status.HELD, send_after__lte=now),
        move={"status": Status.QUEUED, "task_eta": now},
        limit=limit,
    )
    lease_cutoff = now - _delay_setting("NOTIFICATIONS_SENDING_LEASE_SECONDS")
    stalled = Delivery.objects.filter(status=Status.SENDING, claimed_at__lt=lease_cutoff)
    # A row whose worker died at every attempt (one that crashes it, say) is not tried forever.
    max_attempts = settings.NOTIFICATIONS_MAX_ATTEMPTS
    abandoned = stalled.filter(attempts__gte=max_attempts).update(
        status=Status.FAILED,
        failed_at=now,
        last_error=f"No worker finished sending it in {max_attempts} attempts",
    )
    if abandoned:
        logger.error("sweep: gave up on %s deliveries whose workers never finished", abandoned)
    redriven = _sweep(
        stalled.filter(attempts__lt=max_attempts),
        move={
            "status": Status.QUEUED,
            "task_eta": now,
            "last_error": "The worker stopped before recording a result; sending again",
        },
        limit=limit,
    )
    overdue = now - _delay_setting("NOTIFICATIONS_QUEUED_GRACE_SECONDS")
    requeued = _sweep(
        Delivery.objects.filter(status=Status.QUEUED, send_after__lte=now).filter(
            Q(task_eta__isnull=True) | Q(task_eta__lt=overdue)
        ),
        move={"task_eta": now},
        limit=limit,
    )
    if released or redriven or requeued:
        logger.info("sweep: %s released, %s re-driven, %s re-queued", released, redriven, requeued)
    return SweepResult(released=released, redriven=redriven, requeued=requeued)


def _sweep(candidates, *, move: dict, limit: int) -> int:
    moved = []
    for delivery in candidates.order_by("send_after")[:limit]:
        # The same filter again, on this row: a worker may have claimed it meanwhile.
        if candidates.filter(pk=delivery.pk).update(**move):
            moved.append(delivery)
    # Everything moved is due now.
    now = timezone.now()
    _publish([(delivery.pk, now) for delivery in moved])
    return len(moved)


# -- provider callbacks ------------------------------------------------------------------------

# Twilio message statuses we act on; the rest (accepted, queued, sending) say nothing new.
TWILIO_STATUSES = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "undelivered": Status.FAILED,
    "failed": Status.FAILED,
}


def record_sms_status(
    *,
    message_sid: str,
    status: str,
    error_code: str = "",
    delivery_id: int | None = None,
) -> int:
    """Apply a Twilio status callback. Forward only: a late "sent" never overwrites
    "delivered". Matches by our delivery id (in the callback URL: the callback can beat our
    own record of the sid) and the sid. Returns how many rows changed."""
    new = TWILIO_STATUSES.get(status)
    if new is None or not message_sid:
        return 0
    rows = Delivery.objects.filter(channel=Channel.SMS)
    if delivery_id is not None:
        rows = rows.filter(pk=delivery_id).filter(Q(provider_id="") | Q(provider_id=message_sid))
    else:
        rows = rows.filter(provider_id=message_sid)
    now = timezone.now()
    changes: dict = {"status": new, "provider_id": message_sid}
    if new == Status.DELIVERED:
        changes["delivered_at"] = now
    if new == Status.FAILED:
        changes["failed_at"] = now
        changes["last_error"] = f"Carrier reported {status}" + (
            f" (Twilio {error_code})" if error_code else ""
        )
    changed = rows.filter(status__in=statuses_below(new)).update(**changes)
    if changed and new == Status.FAILED and error_code == str(transports.TWILIO_UNSUBSCRIBED):
        for delivery in rows.filter(audience=Audience.CUSTOMER).select_related(
            "entry__thread__customer"
        ):
            customer = delivery.entry.thread.customer
            set_sms_opt_out(customer=customer, opted_out=True)
            _ensure_email_fallback(entry=delivery.entry, customer=customer)
    return changed


# anymail's normalized event types.
EMAIL_EVENTS = {
    "delivered": Status.DELIVERED,
    "opened": Status.DELIVERED,
    "clicked": Status.DELIVERED,
    "bounced": Status.FAILED,
    "rejected": Status.FAILED,
    "failed": Status.FAILED,
}


def record_email_event(*, message_id: str, event_type: str, reason: str = "") -> int:
    """Apply an email provider's tracking event (through anymail). Forward only; an email
    sent as one batch updates every delivery it carried."""
    new = EMAIL_EVENTS.get(event_type)
    if new is None or not message_id:
        return 0
    now = timezone.now()
    changes: dict = {"status": new}
    if new == Status.DELIVERED:
        changes["delivered_at"] = now
    else:
        changes["failed_at"] = now
        changes["last_error"] = f"Email {event_type}" + (f": {reason}" if reason else "")
    return (
        Delivery.objects.filter(channel=Channel.EMAIL, provider_id=message_id)
        .filter(status__in=statuses_below(new))
        .update(**changes)
    )


# -- the customer's preferences and devices ----------------------------------------------------


def update_preferences(
    *,
    customer: Customer,
    sms_enabled: bool,
    email_enabled: bool,
    push_enabled: bool,
    quiet_hours_enabled: bool,
    quiet_start: dt.time,
    quiet_end: dt.time,
    time_zone: str,
) -> NotificationPreferences:
    """Save the customer's choices. The time zone is the customer's own (the portal shows
    times in it too). Held deliveries are rescheduled by the new quiet hours."""
    with transaction.atomic():
        prefs, _ = NotificationPreferences.objects.select_for_update().get_or_create(
            customer=customer, defaults={"time_zone": time_zone}
        )
        prefs.sms_enabled = sms_enabled
        prefs.email_enabled = email_enabled
        prefs.push_enabled = push_enabled
        prefs.quiet_hours_enabled = quiet_hours_enabled
        prefs.quiet_start = quiet_start
        prefs.quiet_end = quiet_end
        prefs.time_zone = time_zone
        prefs.save()
        if customer.time_zone != time_zone:
            Customer.objects.filter(pk=customer.pk).update(time_zone=time_zone)
            customer.time_zone = time_zone
        _reschedule_held(customer=customer, prefs=prefs)
    return prefs


def _reschedule_held(*, customer: Customer, prefs: NotificationPreferences) -> None:
    now = timezone.now()
    quiet = quiet_hours_of(prefs)
    held = Delivery.objects.filter(
        entry__thread__customer=customer,
        audience=Audience.CUSTOMER,
        status=Status.HELD,
        hold_reason=HOLD_QUIET_HOURS,
    ).select_for_update()
    due = []
    for delivery in held:
        release = release_time(quiet, now)
        if release <= now:
            delivery.status, delivery.send_after, delivery.task_eta = Status.QUEUED, now, now
            due.append(delivery)
        else:
            delivery.send_after = release
        delivery.save(update_fields=["status", "send_after", "task_eta", "updated_at"])
    _queue_on_commit(due)


def set_sms_opt_out(*, customer: Customer, opted_out: bool) -> None:
    """Record that the customer's number opted out of texts (STOP, or Twilio error 21610) or
    back in (START). Their notifications go by email while it stands."""
    with transaction.atomic():
        prefs, _ = NotificationPreferences.objects.select_for_update().get_or_create(
            customer=customer, defaults={"time_zone": customer.time_zone}
        )
        if opted_out and prefs.sms_opted_out_at is None:
            prefs.sms_opted_out_at = timezone.now()
        elif not opted_out:
            prefs.sms_opted_out_at = None
        prefs.save(update_fields=["sms_opted_out_at", "updated_at"])


def subscribe_push(
    *, customer: Customer, endpoint: str, p256dh: str, auth: str, user_agent: str = ""
) -> PushSubscription:
    """Remember this device for the customer. An endpoint already known (this device, maybe
    used by someone else before) is reassigned: it belongs to whoever subscribed last."""
    subscription, _ = PushSubscription.objects.update_or_create(
        endpoint=endpoint,
        defaults={
            "customer": customer,
            "p256dh": p256dh,
            "auth": auth,
            "user_agent": user_agent[:300],
        },
    )
    return subscription


def unsubscribe_push(*, customer: Customer, endpoint: str) -> bool:
    """Forget this device (the page unsubscribed it). Only the customer's own."""
    deleted, _ = PushSubscription.objects.filter(customer=customer, endpoint=endpoint).delete()
    return bool(deleted)


def queue_test_push(*, customer: Customer) -> None:
    """Send a test notification to the customer's devices, from a task."""
    from notifications import tasks

    def publish() -> None:
        try:
            tasks.send_test_push.delay(customer.pk)
        except Exception:
            logger.exception("could not queue a test push for customer %s", customer.pk)

    transaction.on_commit(publish)


@dataclass(frozen=True)
class PushTestResult:
    sent: int
    failed: int
    removed: int


def send_test_push(*, customer_id: int) -> PushTestResult:
    """The test push itself (the task's body). Not an entry, so not a Delivery."""
    transport = transports.push_transport()
    customer = Customer.objects.select_related("business").get(pk=customer_id)
    subscriptions = list(customer.push_subscriptions.all())
    if transport is None or not subscriptions:
        return PushTestResult(sent=0, failed=0, removed=0)
    result, _ = _push_to_all(
        transport, subscriptions, content.push_test_payload(customer.business), urgency="high"
    )
    removed = len(subscriptions) - customer.push_subscriptions.count()
    return PushTestResult(sent=result.sent, failed=len(result.errors), removed=removed)
