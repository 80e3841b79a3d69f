"""Sending: the body of the `notifications.deliver` task. Never inside a transaction.

Claim the row (queued → sending, only if due: a conditional UPDATE, so two workers never
both send it), call the provider's transport outside any transaction, then record the result
under the claim's token. Transient errors go back to queued after a backoff; permanent ones,
or too many attempts, end in failed with the reason staff read.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.urls import reverse
from django.utils import timezone

from messaging import live
from messaging.queries import shared_attachment_url
from notifications import queries
from notifications.models import (
    Delivery,
    NotificationPreferences,
    StaffNotificationPreferences,
    StaffPushSubscription,
)
from notifications.outbound import content, fallback, outbox, planning, transports
from notifications.outbound.preferences import set_sms_opt_out
from notifications.outbound.transports import TransportError
from portal.models import Customer

logger = logging.getLogger(__name__)

Status = Delivery.Status
Channel = Delivery.Channel
Audience = Delivery.Audience

RETRY = "retry"


@dataclass
class Claim:
    delivery: Delivery
    token: uuid.UUID
    now: dt.datetime
    # (thread id, seq) of every entry this claim sends for (an email may carry several).
    entries: list[tuple[int, int]] = field(default_factory=list)

    @property
    def rows(self):
        return Delivery.objects.claimed_by(self.token)


def send_delivery(*, delivery_id: int) -> str | None:
    """Send one delivery if it is due and nobody else is sending it. Returns its status
    afterwards ("retry" when it went back to wait), or None when there was nothing to do
    (not due, already taken, finished)."""
    claim = claim_delivery(delivery_id)
    if claim is None:
        return None
    sender = {Channel.SMS: _send_sms, Channel.EMAIL: _send_email, Channel.PUSH: _send_push}
    try:
        status = sender[claim.delivery.channel](claim)
    except Exception as exc:
        # A bug or an outage of our own, not a provider's answer: retried like a transient
        # error, so that a row which cannot be sent ends as "failed", never in a loop.
        logger.exception("delivery %s: unexpected error while sending", delivery_id)
        error = TransportError(f"Internal error ({type(exc).__name__})", permanent=False)
        status = _record_failure(claim, error)
    # Open staff chats update; the thread does not wait for the frame to go.
    live.broadcast_deliveries_changed_on_commit(claim.entries, wait=False)
    return status


def _release_connection() -> None:
    """Before a provider call: a pooled database connection goes back to the pool for the
    wait (the next query takes one again). The worker runs its tasks on threads, dozens
    waiting on providers at once; holding a connection each would need as many, for
    nothing. A connection of its own (DB_POOL=0) is kept: closing it would cost a new one."""
    pooled = connection.settings_dict.get("OPTIONS", {}).get("pool")
    if pooled and connection.connection is not None and not connection.in_atomic_block:
        connection.close()


# What sending a delivery reads, loaded with its claim. Built once: cloning a queryset for
# every claim was a fortieth of the worker's CPU (bench.deliveries --gil).
_CLAIMED = Delivery.objects.select_related(
    "entry__thread__customer__business",
    "entry__thread__customer__notification_preferences",
    "entry__author",
    "staff_user",
)


def claim_delivery(delivery_id: int) -> Claim | None:
    """Take the row for this worker, with everything sending it needs, or None."""
    now = timezone.now()
    token = uuid.uuid4()
    delivery = _CLAIMED.claim_loaded(delivery_id, token=token, now=now)
    if delivery is None:
        return None
    entry = delivery.entry
    return Claim(delivery=delivery, token=token, now=now, entries=[(entry.thread_id, entry.seq)])


def _claimed_preferences(customer: Customer) -> NotificationPreferences:
    """The customer's preferences as loaded with the claimed delivery (no extra query): the
    state right after the claim, which is what the suppression checks must see."""
    try:
        return customer.notification_preferences
    except NotificationPreferences.DoesNotExist:
        return NotificationPreferences(customer=customer, time_zone=customer.time_zone)


def _record_sent(claim: Claim, provider_id: str, *, note: str = "") -> str:
    sent_at = timezone.now()
    try:
        Delivery.objects.record_claim_sent(
            claim.token, provider_id=provider_id, sent_at=sent_at, note=note
        )
    except (OperationalError, InterfaceError):
        # The provider has it but the database is away: left in "sending", the row would be
        # re-driven after the lease and sent twice. The result waits in Redis for the sweeper,
        # which records it instead of sending again (make deploy-test's database restart
        # under traffic texted one message twice before).
        logger.warning("delivery %s: sent, but the database is away; result kept aside",
                       claim.delivery.pk)  # fmt: skip
        outbox.keep_result_aside(
            claim.delivery.pk,
            token=claim.token,
            provider_id=provider_id,
            sent_at=sent_at,
            note=note,
        )
    return Status.SENT


def _record_suppressed(claim: Claim, reason: str) -> str:
    claim.rows.suppress(reason=reason)
    return Status.SUPPRESSED


def backoff(attempts: int) -> dt.timedelta:
    """Exponential backoff with jitter: about base·2^(n-1), capped, times a random factor in
    [0.5, 1) so that a burst of failures does not retry in lockstep."""
    base = settings.NOTIFICATIONS_RETRY_BASE_SECONDS
    cap = settings.NOTIFICATIONS_RETRY_MAX_SECONDS
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return dt.timedelta(seconds=ceiling * random.uniform(0.5, 1.0))


def _record_failure(claim: Claim, error: TransportError) -> str:
    """Transient: back to queued after a backoff (the claim is released). Permanent, or out
    of attempts: failed, with the reason staff will read."""
    attempts = claim.delivery.attempts
    now = timezone.now()
    if not error.permanent and attempts < settings.NOTIFICATIONS_MAX_ATTEMPTS:
        retry_at = now + backoff(attempts)
        ids = claim.rows.retry(
            send_after=retry_at,
            task_eta=outbox.task_eta(Status.QUEUED, retry_at, now),
            note=f"{error.message} (attempt {attempts}; will retry)",
        )
        outbox.publish([(pk, retry_at) for pk in ids])
        return RETRY
    message = error.message
    if not error.permanent:
        message = f"{message} (gave up after {attempts} attempts)"
    claim.rows.fail(reason=message, now=now)
    return Status.FAILED


def _customer_suppression(delivery: Delivery, prefs: NotificationPreferences) -> str:
    """Why a customer notification should not go after all ("" if it should): the same rule
    as planning (planning.text_channels), applied to the preferences as they are now."""
    entry = delivery.entry
    customer = entry.thread.customer
    if entry.seq <= entry.thread.customer_read_seq:
        return "Read in the portal before it was sent"
    if delivery.channel == Channel.PUSH:
        return "" if prefs.push_enabled else "Push turned off by the customer"
    if delivery.channel == Channel.SMS and prefs.sms_opted_out:
        return "The number opted out of texts (STOP)"
    if delivery.channel == Channel.EMAIL and prefs.email_bounced:
        return "Email to this address bounced"
    wanted = {channel for channel, _ in planning.text_channels(customer, prefs)}
    # A fallback goes whatever the customer chose: it is the way left to reach them.
    if delivery.channel not in wanted and not delivery.fallback_for_id:
        return (
            f"{'Texts' if delivery.channel == Channel.SMS else 'Email'} turned off by the customer"
        )
    return ""


# -- per channel -------------------------------------------------------------------------------


def _send_sms(claim: Claim) -> str:
    delivery = claim.delivery
    entry = delivery.entry
    customer = entry.thread.customer
    if delivery.audience == Audience.CUSTOMER:
        prefs = _claimed_preferences(customer)
        reason = _customer_suppression(delivery, prefs)
        if reason:
            status = _record_suppressed(claim, reason)
            if prefs.sms_opted_out:
                fallback.fall_back(failed=delivery, reason="was not sent: the number replied STOP")
            return status
        body = content.sms_for_customer(entry)
    else:
        body = content.sms_for_business(entry, customer)
    callback = f"{settings.SITE_URL}{reverse('twilio_status')}?d={delivery.pk}"
    # Photos go as MMS: Twilio fetches each from a signed link that works for a day.
    media_urls = [shared_attachment_url(f) for f in content.mms_files(entry)]
    _release_connection()
    try:
        sid = transports.sms_transport().send(
            to=delivery.recipient, body=body, status_callback=callback, media_urls=media_urls
        )
    except TransportError as error:
        status = _record_failure(claim, error)
        if status == Status.FAILED and delivery.audience == Audience.CUSTOMER:
            if error.code == transports.TWILIO_UNSUBSCRIBED:
                # The carrier says this number replied STOP: no more texts until START.
                set_sms_opt_out(customer=customer, opted_out=True)
            fallback.fall_back(failed=delivery, reason=f"failed: {error.message}")
        return status
    return _record_sent(claim, sid)


def _send_email(claim: Claim) -> str:
    delivery = claim.delivery
    entry = delivery.entry
    customer = entry.thread.customer
    business = customer.business
    if delivery.audience == Audience.STAFF:
        reason = _staff_suppression(delivery)
        if reason:
            return _record_suppressed(claim, reason)
        message = content.staff_email(entry=entry, customer=customer, delivery=delivery)
    elif delivery.audience == Audience.BUSINESS:
        message = content.business_email(
            entry=entry,
            customer=customer,
            business=business,
            to=delivery.recipient,
            delivery_id=delivery.pk,
            earlier=_earlier_emails(delivery, [delivery.pk]),
        )
    else:
        reason = _customer_suppression(delivery, _claimed_preferences(customer))
        if reason:
            return _record_suppressed(claim, reason)
        batch = _claim_email_batch(claim)
        pks = [d.pk for d in batch]
        message = content.customer_email(
            entries=[d.entry for d in batch],
            customer=customer,
            business=business,
            # Named after its lowest delivery, so that the id can be named again later
            # (reply_addresses.message_id): the rows of one email share a provider id, not
            # who claimed them.
            delivery_id=min(pks),
            earlier=_earlier_emails(delivery, pks),
        )
    _release_connection()
    try:
        provider_id = transports.email_transport().send(message)
    except TransportError as error:
        status = _record_failure(claim, error)
        if status == Status.FAILED and delivery.audience == Audience.CUSTOMER:
            # The provider refused the address for good (invalid, or on its bounce list).
            batch = list(claim.rows.select_related("entry__thread__customer"))
            fallback.mark_email_bounced(deliveries=batch)
            for failed in batch:
                fallback.fall_back(failed=failed, reason=f"failed: {error.message}")
        return status
    return _record_sent(claim, provider_id)


def _earlier_emails(delivery: Delivery, pks: list[int]) -> list[int]:
    return queries.earlier_emails(
        thread_id=delivery.entry.thread_id, audience=delivery.audience, exclude_pks=pks
    )


def _claim_email_batch(claim: Claim) -> list[Delivery]:
    """Join the customer's other queued emails of this thread to this one: the messages
    written before it, and those written within its delay window, go as one email. They are
    claimed under the same token, so they succeed or fail together. Emails held for quiet
    hours stay held: an urgent message's email does not carry them out early."""
    entry = claim.delivery.entry
    window_end = entry.created_at + dt.timedelta(seconds=settings.EMAIL_NOTIFICATION_DELAY_SECONDS)
    joined = Delivery.objects.claim_unread_emails(
        thread_id=entry.thread_id, written_by=window_end, token=claim.token, now=claim.now
    )
    if not joined:
        # The usual case: the email carries its own message, loaded with the claim.
        return [claim.delivery]
    batch = list(claim.rows.select_related("entry").order_by("entry__seq"))
    for joined_delivery in batch:
        # One thread: its links and headers read it from the claim, not once per entry.
        joined_delivery.entry.thread = entry.thread
    claim.entries = [(d.entry.thread_id, d.entry.seq) for d in batch]
    return batch


def _staff_suppression(delivery: Delivery) -> str:
    """Why a staff member's notification should not go after all ("" if it should): their
    preferences as they are now, and whether they are still active staff."""
    user = delivery.staff_user
    if not (user.is_active and user.is_staff):
        return "No longer an active staff member"
    prefs = StaffNotificationPreferences.for_user(user)
    if delivery.channel == Channel.EMAIL and not prefs.email_enabled:
        return f"Email turned off by {content.staff_name(user)}"
    if delivery.channel == Channel.PUSH and not prefs.push_enabled:
        return f"Push turned off by {content.staff_name(user)}"
    return ""


def _send_push(claim: Claim) -> str:
    delivery = claim.delivery
    entry = delivery.entry
    customer = entry.thread.customer
    if delivery.audience == Audience.STAFF:
        reason = _staff_suppression(delivery)
        devices = StaffPushSubscription.objects.filter(user=delivery.staff_user)
        payload = content.staff_push_payload(entry, customer)
    else:
        reason = _customer_suppression(delivery, _claimed_preferences(customer))
        devices = customer.push_subscriptions.all()
        payload = content.push_payload(entry, customer.business)
    subscriptions = list(devices) if not reason else []
    if not reason and not subscriptions:
        reason = "No device is subscribed any more"
    transport = transports.push_transport()
    if not reason and transport is None:
        reason = "Push is not configured on this server"
    if reason:
        return _record_suppressed(claim, reason)
    _release_connection()
    result = push_to_devices(
        transport, subscriptions, payload, urgency="high" if entry.urgent else "normal"
    )
    if result.sent:
        return _record_sent(claim, result.provider_id, note=result.summary)
    return _record_failure(claim, result.error())


@dataclass
class PushResult:
    sent: int
    provider_id: str
    errors: list[TransportError]
    removed: int

    @property
    def summary(self) -> str:
        return "; ".join(e.message for e in self.errors)

    def error(self) -> TransportError:
        # Retry if any device might still take it; fail when every one said never.
        permanent = all(e.permanent for e in self.errors)
        return TransportError(self.summary or "no device", permanent=permanent)


def push_to_devices(transport, subscriptions, payload: dict, *, urgency: str) -> PushResult:
    """Send to each device; forget devices whose push service says they are gone."""
    sent, location, errors, gone, ok_ids = 0, "", [], [], []
    for subscription in subscriptions:
        try:
            answer = transport.send(
                subscription=subscription.as_subscription_info(),
                payload=payload,
                ttl=settings.WEB_PUSH_TTL_SECONDS,
                urgency=urgency,
            )
        except TransportError as error:
            if error.code in transports.GONE_STATUSES:
                gone.append(subscription.pk)
                if error.code in (404, 410):
                    error = TransportError(
                        f"Subscription expired ({error.code}); device removed", permanent=True
                    )
            errors.append(error)
            continue
        sent += 1
        location = location or answer
        ok_ids.append(subscription.pk)
    # A customer's devices or a staff member's: both models keep the same columns.
    devices = type(subscriptions[0])._default_manager if subscriptions else None
    if gone:
        devices.filter(pk__in=gone).delete()
    if ok_ids:
        devices.filter(pk__in=ok_ids).update(last_success_at=timezone.now())
    provider_id = location or (planning.describe_devices(sent) if sent else "")
    return PushResult(sent=sent, provider_id=provider_id, errors=errors, removed=len(gone))


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
    result = push_to_devices(
        transport, subscriptions, content.push_test_payload(customer.business), urgency="high"
    )
    return PushTestResult(sent=result.sent, failed=len(result.errors), removed=result.removed)
