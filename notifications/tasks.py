"""Celery tasks: each takes an id and calls one action.

`acks_late` with `reject_on_worker_lost`: a message is acknowledged only after the task ran,
so a worker killed mid-task leaves it to be delivered again rather than lost. That alone is
not enough with Redis (the broker redelivers only after its visibility timeout), so the
Delivery row is the real record: `sweep_deliveries` re-drives rows stuck in sending, and the
claim makes every extra run of `deliver` a no-op.
"""

from __future__ import annotations

from celery import shared_task

from notifications import actions

# A delivery's provider calls time out after NOTIFICATIONS_PROVIDER_TIMEOUT seconds each; the
# hard limit stops a task stuck anyway, well inside the sending lease the sweeper waits for.
TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "soft_time_limit": 100,
    "time_limit": 120,
}


@shared_task(name="notifications.deliver", **TASK_OPTIONS)
def deliver(delivery_id: int) -> str | None:
    return actions.send_delivery(delivery_id=delivery_id)


@shared_task(name="notifications.sweep", **TASK_OPTIONS)
def sweep_deliveries() -> dict:
    result = actions.sweep_deliveries()
    return {"released": result.released, "redriven": result.redriven, "requeued": result.requeued}


@shared_task(name="notifications.test_push", **TASK_OPTIONS)
def send_test_push(customer_id: int) -> dict:
    result = actions.send_test_push(customer_id=customer_id)
    return {"sent": result.sent, "failed": result.failed, "removed": result.removed}
