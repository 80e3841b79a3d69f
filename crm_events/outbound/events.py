"""`record_event`: the one verb that writes an outbound event and its outbox rows, and the
events the portal tells the CRM of.

Every event is written in the transaction of the change it tells of (an approval that rolls
back tells the CRM nothing), as one `OutboundEvent` (its body fixed now, byte for byte) and one
`WebhookDelivery` per endpoint that hears its type; their tasks are queued on commit.

Order: each customer's events carry `sequence`, 1, 2, 3… in the order their changes committed
(taken under the lock of the customer's thread row, which every change to a customer's
conversation takes too). Deliveries are independent — one event failing does not hold back the
next — so the CRM orders a customer's events by `sequence`, not by arrival.

For colleagues: `customer.updated` (contact changes, from the account page) and
`request.created` (work requests) are recorded by calling, inside the action's transaction::

    from crm_events.outbound.events import record_event
    record_event(type="customer.updated", customer=customer, key=f"customer:{customer.pk}:{n}",
                 data={"name": ..., "email": ..., "phone": ..., "changed": ["phone"]})

`key` names the change (the same key again records nothing new); `data` is JSON-ready (strings,
numbers, booleans, lists, dicts: format dates and money before). Add its `data` schema to
`crm_events/outbound/openapi.py` so `/api/openapi.json` describes it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from crm_events.outbound import endpoints, outbox
from crm_events.outbound.files import photo_url
from crm_events.outbound.models import EventType, OutboundEvent, WebhookDelivery
from messaging import actions as thread_actions
from messaging.models import Entry, Side, Thread
from portal.models import Customer, Project


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def record_event(
    *,
    type: str,  # noqa: A002 - the event's field is named "type"
    customer: Customer,
    key: str,
    data: dict[str, Any],
    project: Project | None = None,
    occurred_at: dt.datetime | None = None,
) -> OutboundEvent | None:
    """Record event `type` about `customer`, to be sent to every endpoint that hears it; None
    when none does (nothing is kept for no one). Call it inside the transaction of the change
    it tells of. The same `key` again returns the event recorded first."""
    if type not in EventType.values:
        raise ValueError(f"unknown outbound event type {type!r}")
    # Before any transaction: with no endpoint (the common case) and the table cached, this
    # costs no query at all, not even a savepoint.
    endpoint_ids = endpoints.endpoints_hearing(type)
    if not endpoint_ids:
        return None
    return _record(
        type=type,
        customer=customer,
        key=key,
        data=data,
        project=project,
        occurred_at=occurred_at,
        endpoint_ids=endpoint_ids,
    )


@transaction.atomic
def _record(
    *,
    type: str,  # noqa: A002
    customer: Customer,
    key: str,
    data: dict[str, Any],
    project: Project | None,
    occurred_at: dt.datetime | None,
    endpoint_ids: list[int],
) -> OutboundEvent:
    # The thread row is the customer's lock: sequence numbers are gap-free and in commit
    # order, and the key check below cannot race with its own insert.
    thread = thread_actions.ensure_thread(customer=customer)
    Thread.objects.select_for_update().only("pk").get(pk=thread.pk)
    existing = OutboundEvent.objects.filter(key=key).first()
    if existing is not None:
        return existing
    last = OutboundEvent.objects.filter(customer=customer).aggregate(n=Max("sequence"))["n"]
    sequence = (last or 0) + 1
    occurred_at = occurred_at or timezone.now()
    event_id = OutboundEvent.new_id()
    body = {
        "type": type,
        "id": event_id,
        "sequence": sequence,
        "occurred_at": _iso(occurred_at),
        "customer": {"id": customer.pk, "crm_id": customer.crm_id or None},
        "project": project.code if project is not None else None,
        "data": data,
    }
    event = OutboundEvent.objects.create(
        event_id=event_id,
        type=type,
        key=key[:200],
        customer=customer,
        project=project,
        sequence=sequence,
        occurred_at=occurred_at,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
    )
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            event=event,
            endpoint_id=endpoint_id,
            next_attempt_at=now,
            give_up_at=now + endpoints.retry_window(),
        )
        for endpoint_id in endpoint_ids
    )
    outbox.queue_on_commit([d.pk for d in deliveries])
    return event


# -- the events --------------------------------------------------------------------------------


def message_received(*, entry: Entry, customer: Customer) -> None:
    """Subscribed to messaging's appends: every message from the customer, on any channel."""
    if entry.kind != Entry.Kind.CUSTOMER_REPLY:
        return
    record_event(
        type=EventType.MESSAGE_RECEIVED,
        customer=customer,
        key=f"entry:{entry.pk}",
        project=entry.project,
        occurred_at=entry.created_at,
        data={
            "entry_id": entry.pk,
            "seq": entry.seq,
            "channel": entry.channel,
            "body": entry.body,
            "attachment_count": entry.attachment_count,
        },
    )


def conversation_read(*, thread: Thread, side: str, up_to_seq: int, at: dt.datetime) -> None:
    """Subscribed to messaging's read marks: the customer has read up to `up_to_seq`."""
    # Checked first: with no endpoint hearing it, reading costs no query (not even the
    # customer's row).
    if side != Side.CUSTOMER or not endpoints.endpoints_hearing(EventType.CONVERSATION_READ):
        return
    record_event(
        type=EventType.CONVERSATION_READ,
        customer=thread.customer,
        key=f"read:{thread.pk}:{up_to_seq}",
        occurred_at=at,
        data={"up_to_seq": up_to_seq, "read_at": _iso(at)},
    )


def estimate_decided(*, estimate, decided_by: str, decision=None) -> None:
    """From `transition_estimate`, when an estimate is approved or declined in the portal
    (by the customer, with their `decision` record, or by staff). What the CRM itself decided
    it already knows."""
    if decided_by == "crm":
        return
    approved = estimate.status == "approved"
    signed = decision is not None
    chosen = []
    if signed and decision.chosen_options:
        by_position = {line.position: line for line in estimate.lines.all()}
        chosen = [
            {
                "position": p,
                "description": by_position[p].description,
                "amount": f"{by_position[p].amount:.2f}",
            }
            for p in decision.chosen_options
        ]
    record_event(
        type=EventType.ESTIMATE_APPROVED if approved else EventType.ESTIMATE_DECLINED,
        customer=estimate.customer,
        key=f"estimate:{estimate.pk}:v{estimate.version}:{estimate.status}",
        project=estimate.project,
        occurred_at=estimate.decided_at,
        data={
            "number": estimate.number,
            "crm_id": estimate.external_id or None,
            "version": estimate.version,
            "total": f"{(decision.total if signed else estimate.total):.2f}",
            "currency": estimate.currency,
            "decided_by": decided_by,
            "decided_at": _iso(estimate.decided_at),
            "signer": {
                "name": decision.signer_name,
                "ip_address": decision.ip_address,
                "user_agent": decision.user_agent,
            }
            if signed
            else None,
            "document_sha256": decision.document_sha256 if signed else None,
            "chosen_options": chosen,
            "reason": decision.reason if signed else "",
        },
    )


def _appointment_data(appointment) -> dict[str, Any]:
    return {
        "id": appointment.pk,
        "crm_id": appointment.external_id or None,
        "title": appointment.title,
        "starts_at": _iso(appointment.starts_at),
        "ends_at": _iso(appointment.ends_at),
    }


def appointment_confirmed(*, appointment) -> None:
    """From `transition_appointment`, when a visit becomes confirmed (once per start time)."""
    record_event(
        type=EventType.APPOINTMENT_CONFIRMED,
        customer=appointment.customer,
        key=f"appointment:{appointment.pk}:confirmed:{int(appointment.starts_at.timestamp())}",
        project=appointment.project,
        occurred_at=appointment.confirmed_at,
        data={**_appointment_data(appointment), "confirmed_at": _iso(appointment.confirmed_at)},
    )


def reschedule_requested(*, appointment, note: str, entry: Entry) -> None:
    """From `ask_to_reschedule`: the customer asked for another time, with their note."""
    record_event(
        type=EventType.APPOINTMENT_RESCHEDULE_REQUESTED,
        customer=appointment.customer,
        key=f"appointment:{appointment.pk}:reschedule_requested:{entry.pk}",
        project=appointment.project,
        occurred_at=entry.created_at,
        data={**_appointment_data(appointment), "note": note, "entry_id": entry.pk},
    )


def request_created(*, work_request, entry: Entry, windows) -> None:
    """From `request_work`: the customer asked for work, with their photos as links the CRM
    can fetch (crm_events.outbound.files: signed, valid for the retry window and a week)."""
    zone = work_request.customer.time_zone
    shown_windows = []
    for window in windows:
        starts_at, ends_at = window.bounds(zone)
        shown_windows.append(
            {
                "date": window.date.isoformat(),
                "part": window.part,
                "starts_at": _iso(starts_at),
                "ends_at": _iso(ends_at),
            }
        )
    photos = [
        {
            "id": a.pk,
            "name": a.name,
            "content_type": a.content_type,
            "size": a.size,
            "url": photo_url(a),
        }
        for a in entry.attachments.all()
        if not a.staff_only
    ]
    record_event(
        type=EventType.REQUEST_CREATED,
        customer=work_request.customer,
        key=f"request:{work_request.pk}",
        occurred_at=entry.created_at,
        data={
            "request_id": work_request.pk,
            "entry_id": entry.pk,
            "description": work_request.description,
            "address": work_request.address,
            "time_zone": zone,
            "windows": shown_windows,
            "photos": photos,
        },
    )
