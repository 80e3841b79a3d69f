"""Celery tasks: each takes an id and calls one action.

A task is only a prompt: the Delivery row is the real record. The Redis broker keeps no copy
of a task a worker took (settings: CELERY_BROKER_TRANSPORT_OPTIONS, no ack emulation; a warm
shutdown puts the worker's reserved tasks back), so a task lost with a killed worker is found
again as its row: the sweeper re-drives rows stuck in sending and re-queues due rows whose
task is overdue, and the claim makes every extra run of `deliver` a no-op.
"""

from __future__ import annotations

from celery import shared_task

from notifications.inbound import actions as inbound
from notifications.outbound import outbox, sending

# A delivery's provider calls time out after NOTIFICATIONS_PROVIDER_TIMEOUT seconds each; the
# hard limit stops a task stuck anyway, well inside the sending lease the sweeper waits for.
TIME_LIMITS = {"soft_time_limit": 100, "time_limit": 120}


@shared_task(name=outbox.DELIVER_TASK, **TIME_LIMITS)
def deliver(delivery_id: int) -> str | None:
    return sending.send_delivery(delivery_id=delivery_id)


@shared_task(name=outbox.DELIVER_MANY_TASK, **TIME_LIMITS)
def deliver_many(items: list[list]) -> None:
    """Several deliveries queued in one message (one send's channels, a sweep)."""
    outbox.deliver_many(
        items, send=lambda delivery_id: sending.send_delivery(delivery_id=delivery_id)
    )


@shared_task(name="notifications.sweep", **TIME_LIMITS)
def sweep_deliveries() -> dict:
    result = outbox.sweep_deliveries()
    requeued_inbound = inbound.sweep_inbound()
    return {
        "released": result.released,
        "redriven": result.redriven,
        "requeued": result.requeued,
        "inbound_requeued": requeued_inbound,
    }


@shared_task(name=inbound.FETCH_MEDIA_TASK, **TIME_LIMITS)
def fetch_inbound_media(inbound_id: int) -> str:
    return inbound.fetch_inbound_media(inbound_id=inbound_id)


@shared_task(name=outbox.TEST_PUSH_TASK, **TIME_LIMITS)
def send_test_push(customer_id: int) -> dict:
    result = sending.send_test_push(customer_id=customer_id)
    return {"sent": result.sent, "failed": result.failed, "removed": result.removed}
