"""Celery tasks for the CRM: the periodic automations (beat: `crm-automations`), and the
outbound webhooks: one attempt at a delivery, and their sweep (beat: `crm-webhooks`)."""

from __future__ import annotations

from celery import shared_task

from crm_events import automations
from crm_events.announcements import actions as announcement_actions
from crm_events.outbound import outbox, sending


@shared_task(
    name="crm_events.run_automations",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=240,
    time_limit=280,
)
def run_automations() -> dict:
    # Every action it calls is keyed by record and change: a second run sends nothing new.
    return automations.run_automations()


@shared_task(name=outbox.DELIVER_TASK, soft_time_limit=100, time_limit=120, ignore_result=True)
def deliver_webhook(delivery_id: int) -> str:
    return sending.send_delivery(delivery_id=delivery_id)


@shared_task(name=outbox.SWEEP_TASK, soft_time_limit=100, time_limit=120)
def sweep_webhooks() -> dict:
    return outbox.sweep()


@shared_task(
    name=announcement_actions.BATCH_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=240,
    time_limit=280,
)
def announcement_batch(announcement_id: int) -> int:
    return announcement_actions.send_batch(announcement_id=announcement_id)


@shared_task(name="crm_events.sweep_announcements", ignore_result=True, soft_time_limit=100)
def sweep_announcements() -> int:
    return announcement_actions.sweep_announcements()
