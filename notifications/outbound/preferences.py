"""The customer's choices: channels, quiet hours, SMS opt-out, and push devices; and a staff
member's (email, push and their devices)."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from notifications.models import (
    Delivery,
    NotificationPreferences,
    PushSubscription,
    StaffNotificationPreferences,
    StaffPushSubscription,
)
from notifications.outbound import outbox, planning
from notifications.outbound.quiet_hours import release_time
from portal import actions as portal_actions
from portal.celery import run_task
from portal.models import Customer

logger = logging.getLogger(__name__)

Status = Delivery.Status


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
        # Saving is also how a customer whose email bounced asks us to try it again.
        prefs.email_bounced_at = None
        prefs.save()
        portal_actions.set_time_zone(customer=customer, time_zone=time_zone)
        _reschedule_held(customer=customer, prefs=prefs)
    return prefs


def _reschedule_held(*, customer: Customer, prefs: NotificationPreferences) -> None:
    now = timezone.now()
    quiet = planning.quiet_hours_of(prefs)
    held = Delivery.objects.filter(
        entry__thread__customer=customer,
        audience=Delivery.Audience.CUSTOMER,
        status=Status.HELD,
        hold_reason=planning.HOLD_QUIET_HOURS,
    )
    release = release_time(quiet, now)
    if release > now:
        held.hold_until(release)
        return
    ids = list(held.select_for_update().values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids).release_held(now=now)
    outbox.queue_on_commit(list(Delivery.objects.filter(pk__in=ids, status=Status.QUEUED)))


def set_sms_opt_out(*, customer: Customer, opted_out: bool) -> bool:
    """Record that the customer's number opted out of texts (STOP, or Twilio error 21610) or
    back in (START). Their notifications go by email while it stands. Returns whether the
    state changed."""
    with transaction.atomic():
        prefs, _ = NotificationPreferences.objects.select_for_update().get_or_create(
            customer=customer, defaults={"time_zone": customer.time_zone}
        )
        if opted_out == prefs.sms_opted_out:
            return False
        prefs.sms_opted_out_at = timezone.now() if opted_out else None
        prefs.save(update_fields=["sms_opted_out_at", "updated_at"])
    return True


def turn_off_email(*, customer: Customer) -> bool:
    """The one-click unsubscribe of an email's List-Unsubscribe link (RFC 8058): no more email
    notifications to this customer until they turn them back on in their settings. Emails
    already waiting are not sent (the send-time check reads this). Returns whether it changed."""
    with transaction.atomic():
        prefs, _ = NotificationPreferences.objects.select_for_update().get_or_create(
            customer=customer, defaults={"time_zone": customer.time_zone}
        )
        if not prefs.email_enabled:
            return False
        prefs.email_enabled = False
        prefs.save(update_fields=["email_enabled", "updated_at"])
    return True


def subscribe_push(
    *, customer: Customer, endpoint: str, p256dh: str, auth: str, user_agent: str = ""
) -> PushSubscription:
    """Remember this device for the customer. An endpoint already known (this device, maybe
    used by someone else before) is reassigned: it belongs to whoever subscribed last."""
    StaffPushSubscription.objects.filter(endpoint=endpoint).delete()
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
    """Send a test notification to the customer's devices, from a task, after commit."""

    def publish() -> None:
        try:
            run_task(outbox.TEST_PUSH_TASK, customer.pk)
        except Exception:
            logger.exception("could not queue a test push for customer %s", customer.pk)

    transaction.on_commit(publish)


# -- staff members: how each hears of their assigned threads and mentions ------------------------


def update_staff_preferences(*, user, email_enabled: bool, push_enabled: bool) -> None:
    """A staff member's own choices (/staff/settings/). Read again when each notification is
    sent, so turning a channel off stops what is still queued on it."""
    StaffNotificationPreferences.objects.update_or_create(
        user=user, defaults={"email_enabled": email_enabled, "push_enabled": push_enabled}
    )


def subscribe_staff_push(
    *, user, endpoint: str, p256dh: str, auth: str, user_agent: str = ""
) -> StaffPushSubscription:
    """Remember this browser for the staff member. A device a customer subscribed before is
    no longer the customer's: one device, one owner (whoever subscribed it last)."""
    PushSubscription.objects.filter(endpoint=endpoint).delete()
    subscription, _ = StaffPushSubscription.objects.update_or_create(
        endpoint=endpoint,
        defaults={"user": user, "p256dh": p256dh, "auth": auth, "user_agent": user_agent[:300]},
    )
    return subscription


def unsubscribe_staff_push(*, user, endpoint: str) -> bool:
    """Forget this browser (the settings page unsubscribed it). Only the staff member's own."""
    deleted, _ = StaffPushSubscription.objects.filter(user=user, endpoint=endpoint).delete()
    return bool(deleted)
