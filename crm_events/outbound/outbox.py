"""Queueing delivery tasks, and the sweep that keeps rows moving.

A `WebhookDelivery` row is the work; a Celery task is only a prompt to do it now. A lost task
(Redis down, a worker killed) loses nothing: the periodic sweep (beat: `crm-webhooks`) queues
every due row again, and the claim in `sending` makes an extra run a no-op. Retries wait as
rows too (no long countdowns on the broker), so the sweep is also what sends them when due.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from crm_events.outbound.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from portal.celery import run_task

logger = logging.getLogger(__name__)

DELIVER_TASK = "crm_events.deliver_webhook"
SWEEP_TASK = "crm_events.sweep_webhooks"


def queue_on_commit(delivery_ids: list[int]) -> None:
    """Queue a delivery task for each row once the current transaction commits."""
    if delivery_ids:
        transaction.on_commit(lambda: publish(delivery_ids), robust=True)


def publish(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        try:
            run_task(DELIVER_TASK, delivery_id)
        except KombuOperationalError:
            logger.warning("could not queue webhook %s (broker down); the sweep will", delivery_id)
        except Exception:
            # Eager tasks (no Redis) ran here and failed: the row stays, the sweep retries it.
            logger.exception("webhook delivery %s failed to queue or run", delivery_id)


def sweep(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Periodic: rows stuck in sending past the lease (their worker died) go back to the
    queue, every due pending row of an enabled endpoint gets a task, and attempts older than
    CRM_OUTBOUND_LOG_DAYS leave the log."""
    now = now or timezone.now()
    lease = dt.timedelta(seconds=settings.CRM_OUTBOUND_SENDING_LEASE_SECONDS)
    redriven = WebhookDelivery.objects.filter(
        status=DeliveryStatus.SENDING, claimed_at__lt=now - lease
    ).redrive_stalled(now=now)
    due = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    publish(due)
    # The delivery log is for looking into recent trouble; it is kept for LOG_DAYS.
    old_log = WebhookAttempt.objects.filter(
        started_at__lt=now - dt.timedelta(days=settings.CRM_OUTBOUND_LOG_DAYS)
    )
    pruned = WebhookAttempt.objects.filter(
        pk__in=list(old_log.values_list("pk", flat=True)[:limit])
    ).delete()[0]
    return {"redriven": redriven, "queued": len(due), "log_pruned": pruned}


def resend(*, deliveries) -> int:
    """Staff's "resend": delivered or failed rows go again, with days of retries, as the same
    event (same `webhook-id` and body, so a CRM that has it ignores it). Rows still pending or
    sending are on their way already."""
    now = timezone.now()
    ids = list(deliveries.values_list("pk", flat=True))
    with transaction.atomic():
        moved = WebhookDelivery.objects.filter(pk__in=ids).resend(
            now=now, retry_for=dt.timedelta(days=settings.CRM_OUTBOUND_RETRY_DAYS)
        )
        queue_on_commit(ids)
    return moved
