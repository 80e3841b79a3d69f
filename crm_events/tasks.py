"""Celery tasks for the CRM: the periodic automations (beat: `crm-automations`)."""

from __future__ import annotations

from celery import shared_task

from crm_events import automations


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
