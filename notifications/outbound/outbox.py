"""The outbox: queueing a Delivery's send task, and the sweeper that keeps rows moving.

A Delivery row is the record of work to do; a Celery task is only a prompt to do it now. So
a task may be lost (Redis down, a worker killed) and nothing is: the sweeper finds the row
and queues it again, and the claim in `sending` makes every extra run a no-op.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from notifications.models import Delivery
from portal.celery import app, run_task

logger = logging.getLogger(__name__)

Status = Delivery.Status

DELIVER_TASK = "notifications.deliver"
DELIVER_MANY_TASK = "notifications.deliver_many"
TEST_PUSH_TASK = "notifications.test_push"

# A task is published only for work due within this long; later work waits as a row for the
# sweeper. (The Redis broker redelivers unacknowledged messages after its visibility timeout,
# so long countdowns would be sent twice; rows cannot be.)
MAX_COUNTDOWN = dt.timedelta(minutes=5)


def _publishes(send_after: dt.datetime, now: dt.datetime) -> bool:
    """Whether a task is published for work due at `send_after`: only for work due soon (no
    long countdowns), and with eager tasks (no Redis) only for work due now, since an eager
    task cannot wait. Everything else waits as a row for the sweeper."""
    wait = send_after - now
    if wait > MAX_COUNTDOWN:
        return False
    return wait <= dt.timedelta(0) or not app.conf.task_always_eager


def task_eta(status: str, send_after: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """What to record as a row's task_eta: when its task will run, or None if no task is
    published for it (then the sweeper picks it up as soon as it is due)."""
    if status == Status.QUEUED and _publishes(send_after, now):
        return max(send_after, now)
    return None


def queue_on_commit(deliveries: list[Delivery]) -> None:
    """Queue the send task of each delivery once the current transaction commits (at once
    when there is none). The only place delivery tasks are queued from a write."""
    due = [(d.pk, d.send_after) for d in deliveries]
    if due:
        # robust: whatever goes wrong here is logged; the message is committed either way.
        transaction.on_commit(lambda: publish(due), robust=True)


def publish(due: list[tuple[int, dt.datetime]]) -> None:
    """Queue the send of each (delivery id, due time), skipping work not due soon: one
    message to the broker however many there are (one Redis round trip for a send that
    notifies on several channels). One delivery is one `deliver` task; several are one
    `deliver_many` task, which sends the first due and queues the rest, each as its own task
    at its own time (so a worker still sends them side by side)."""
    now = timezone.now()
    publishing = [(pk, send_after) for pk, send_after in due if _publishes(send_after, now)]
    if not publishing:
        return  # the sweeper queues them when they are due
    first_due = min(send_after for _, send_after in publishing)
    wait = max(dt.timedelta(0), first_due - now).total_seconds() or None
    ids = [pk for pk, _ in publishing]
    try:
        if len(publishing) == 1:
            run_task(DELIVER_TASK, ids[0], countdown=wait)
        else:
            items = [[pk, send_after.timestamp()] for pk, send_after in publishing]
            run_task(DELIVER_MANY_TASK, items, countdown=wait)
    except KombuOperationalError:
        # The broker is down. The entry is committed and the rows are queued: the sweeper
        # re-queues them once Redis is back. Sending a message must not fail on this.
        logger.warning("could not queue delivery %s (broker unreachable); the sweeper will", ids)
    except Exception:
        # With eager tasks the task itself ran here and failed: its row stays claimed and
        # the sweeper sends it again after the lease.
        logger.exception("deliveries %s failed to queue or to run; the sweeper will retry", ids)


def deliver_many(items: list[list], *, send: Callable[[int], object]) -> None:
    """The worker's half of a `deliver_many` message ((delivery id, due epoch seconds)
    pairs): each other delivery queued as its own task at its own time, then the first one
    due now sent here (`send`: the worker's send of one delivery)."""
    # A second's grace: a countdown may wake its task a little early by this clock.
    due_now = [pk for pk, at in items if at <= timezone.now().timestamp() + 1]
    here = due_now[0] if due_now else None
    later = [(pk, dt.datetime.fromtimestamp(at, tz=dt.UTC)) for pk, at in items if pk != here]
    for delivery_id, send_after in later:
        # A row whose task is lost here is re-queued by the sweeper, as any lost task.
        publish([(delivery_id, send_after)])
    if here is not None:
        send(here)


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
        move=lambda row: row.release_held(now=now),
        limit=limit,
    )
    lease = dt.timedelta(seconds=settings.NOTIFICATIONS_SENDING_LEASE_SECONDS)
    stalled = Delivery.objects.filter(status=Status.SENDING, claimed_at__lt=now - lease)
    recorded = _record_results_kept_aside(stalled, limit=limit)
    # A row whose worker died at every attempt (one that crashes it, say) is not tried forever.
    max_attempts = settings.NOTIFICATIONS_MAX_ATTEMPTS
    abandoned = stalled.filter(attempts__gte=max_attempts).fail(
        reason=f"No worker finished sending it in {max_attempts} attempts", now=now
    )
    if abandoned:
        logger.error("sweep: gave up on %s deliveries whose workers never finished", abandoned)
    redriven = _sweep(
        stalled.filter(attempts__lt=max_attempts),
        move=lambda row: row.redrive_stalled(
            now=now, note="The worker stopped before recording a result; sending again"
        ),
        limit=limit,
    )
    grace = dt.timedelta(seconds=settings.NOTIFICATIONS_QUEUED_GRACE_SECONDS)
    requeued = _sweep(
        Delivery.objects.filter(status=Status.QUEUED, send_after__lte=now).filter(
            Q(task_eta__isnull=True) | Q(task_eta__lt=now - grace)
        ),
        # Not a change of status: the row stays queued, with a new task.
        move=lambda row: row.update(task_eta=now),
        limit=limit,
    )
    if released or redriven or requeued or recorded:
        logger.info(
            "sweep: %s released, %s re-driven, %s re-queued, %s results recorded",
            released, redriven, requeued, recorded,
        )  # fmt: skip
    return SweepResult(released=released, redriven=redriven, requeued=requeued)


# -- results the database could not take -------------------------------------------------------
# A worker that sent a message while the database was away keeps the provider's answer here,
# under the row's claim token, long enough for any lease; the sweeper records it before it
# would re-drive the row. A cache that cannot be reached is a miss: at worst, the old re-drive.
RESULT_KEPT_SECONDS = 7 * 24 * 3600


def _result_key(delivery_id: int) -> str:
    return f"delivery-result:{delivery_id}"


def keep_result_aside(
    delivery_id: int, *, token, provider_id: str, sent_at: dt.datetime, note: str
) -> None:
    result = {"token": str(token), "provider_id": provider_id, "sent_at": sent_at, "note": note}
    try:
        cache.set(_result_key(delivery_id), result, RESULT_KEPT_SECONDS)
    except Exception:  # Redis away too: the sweeper will send it again
        logger.exception("delivery %s: its result could not be kept aside", delivery_id)


def _record_results_kept_aside(stalled: QuerySet[Delivery], *, limit: int) -> int:
    rows = dict(stalled.values_list("pk", "claim_token")[:limit])
    if not rows:
        return 0
    try:
        kept = cache.get_many([_result_key(pk) for pk in rows])
    except Exception:
        logger.exception("sweep: results kept aside could not be read")
        return 0
    recorded = 0
    for pk, token in rows.items():
        result = kept.get(_result_key(pk))
        if result is None or result["token"] != str(token):
            continue
        recorded += (
            Delivery.objects.filter(pk=pk)
            .claimed_by(token)
            .record_sent(
                provider_id=result["provider_id"], sent_at=result["sent_at"], note=result["note"]
            )
        )
        cache.delete(_result_key(pk))
    return recorded


def _sweep(candidates: QuerySet[Delivery], *, move: Callable[[QuerySet], int], limit: int) -> int:
    moved = []
    for delivery_id in candidates.order_by("send_after").values_list("pk", flat=True)[:limit]:
        # The same filter again, on this row: a worker may have claimed it meanwhile.
        if move(candidates.filter(pk=delivery_id)):
            moved.append(delivery_id)
    now = timezone.now()
    publish([(delivery_id, now) for delivery_id in moved])  # everything moved is due now
    return len(moved)
